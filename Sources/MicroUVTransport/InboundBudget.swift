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
        guard delta > 0 else {
            used.add(delta, ordering: .relaxed)
            return true
        }
        // Compare and exchange: a charge that does not fit must not make one that fits fail meanwhile.
        var current = used.load(ordering: .relaxed)
        while true {
            if current > limit - delta { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + delta, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }
}
