import MicroCore
import Synchronization

/// The cached nodes of one service with everything selection keeps about them. Thread-safe: all state is
/// behind one mutex per service, held only for a pick or a mark (no allocation, no system call on the warm
/// path except reading the monotonic clock when needed).
final class ServicePool: Sendable {
    let name: String
    /// Guarded by its mutex.
    let state: Mutex<PoolState>
    /// Signalled after nodes were added or listed again, for calls waiting for a node.
    let changes = ChangeSignal()

    init(name: String, services: [Service], configuration: SelectorConfiguration) {
        self.name = name
        var s = PoolState(configuration: configuration)
        s.replace(with: services)
        state = Mutex(s)
    }

    /// Changes the state, then wakes the calls waiting for a node.
    func update(_ body: (inout PoolState) -> Void) {
        state.withLock { body(&$0) }
        changes.signal()
    }
}
