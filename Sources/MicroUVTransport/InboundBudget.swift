import Synchronization

/// The bytes a server's connections hold for incomplete frames, against a limit. Shared by the connections of
/// every loop; charged only when a connection's buffer for an incomplete frame is made, grows or goes (not per
/// frame). Thread-safe (an atomic).
final class InboundBudget: Sendable {
    /// The most all connections may hold together (`Int.max`: no limit).
    let limit: Int
    /// The most one connection may hold.
    let perConnection: Int
    private let used = Atomic<Int>(0)

    init(limit: Int, perConnection: Int) {
        self.limit = limit <= 0 ? .max : limit
        self.perConnection = perConnection <= 0 ? .max : perConnection
    }

    var usedBytes: Int { used.load(ordering: .relaxed) }

    /// Adds `delta` (negative to give back); false, and nothing added, when it would pass the limit.
    func charge(_ delta: Int) -> Bool {
        let now = used.add(delta, ordering: .relaxed).newValue
        if delta > 0 && now > limit {
            used.subtract(delta, ordering: .relaxed)
            return false
        }
        return true
    }
}
