internal import MicroCore
import Synchronization

/// A namespace of in-memory servers, addressed by name. Tests create one, start ``InMemoryServer``s on it and
/// point ``InMemoryTransport`` clients at it. Nothing is global: two networks never see each other.
public final class InMemoryNetwork: Sendable {
    private let servers = Mutex<[String: InMemoryServer]>([:])

    public init() {}

    func register(_ server: InMemoryServer, at address: String) throws(TransportError) {
        try servers.withLock { (s: inout [String: InMemoryServer]) throws(TransportError) in
            if s[address] != nil { throw TransportError(.invalidState, "address \(address) is in use") }
            s[address] = server
        }
    }

    func unregister(_ address: String) { _ = servers.withLock { $0.removeValue(forKey: address) } }

    func server(at address: String) -> InMemoryServer? { servers.withLock { $0[address] } }
}
