public import MicroCore

/// An in-memory ``ClientTransport``: streams go to ``InMemoryServer``s on the same ``InMemoryNetwork``.
public final class InMemoryTransport: ClientTransport {
    public let network: InMemoryNetwork

    public init(network: InMemoryNetwork) { self.network = network }

    public func openStream(
        to address: String,
        head: RequestHead,
        firstMessage: [UInt8]?,
        endOfInput: Bool,
        deadline: Timestamp?
    ) async throws(TransportError) -> ClientStream {
        if let deadline, deadline <= .now { throw TransportError(.deadlineExceeded, "deadline passed before the stream opened") }
        guard let server = network.server(at: address) else {
            throw TransportError(.connectFailed, "no in-memory server at \(address)")
        }
        return try server.accept(head, firstMessage: firstMessage, endOfInput: endOfInput)
    }

    public func shutdown() async {}
}
