internal import MicroCore

/// The registry selector's ``Next``: picks by the strategy among the pool's nodes that pass the filters and are
/// not ejected, preferring nodes it has not returned yet (so a retry lands on another node); only when every such
/// node was tried does it return one again. When ejection or filters leave nothing, it still returns an ejected
/// node that passes the filters rather than nothing ("panic mode"). Not thread-safe: use it from one task.
final class PoolNext: Next {
    /// The registry-fed pool it picks from.
    let pool: ServicePool
    let strategy: Strategy
    let filters: [Filter]
    /// Canary weights by version (nil: no split).
    let canary: [String: Int]?
    /// The version the canary split chose for this call (decided by the first `next()`).
    var canaryVersion: String?
    var canaryDecided = false
    /// Ids of the nodes returned so far (the first inline, to avoid an allocation for the common single pick).
    var firstTried: String?
    var moreTried: [String] = []
    /// Where the last node returned sat in the pool, valid while the pool's generation is unchanged: lets
    /// ``mark(_:outcome:)`` find it without hashing.
    var lastIndex = -1
    var lastGeneration: UInt64 = 0
    /// The pool's change count when a pick last found nothing (what ``waitForChange(until:)`` waits past).
    var seenChanges: UInt64 = 0

    init(pool: ServicePool, strategy: Strategy, filters: [Filter], canary: [String: Int]?) {
        self.pool = pool
        self.strategy = strategy
        self.filters = filters
        self.canary = canary
        super.init(service: pool.name)
    }

    override func next() throws -> Node {
        try pool.state.withLock { state throws(SelectorError) -> Node in
            do throws(SelectorError) {
                return try state.pick(for: self)
            } catch {
                // Read under the state's lock: a change after this pick is signalled after it, so it is not missed.
                seenChanges = pool.changes.version
                throw error
            }
        }
    }

    override nonisolated(nonsending) func waitForChange(until deadline: Timestamp) async {
        await pool.changes.wait(after: seenChanges, until: deadline)
    }

    override func mark(_ node: Node, outcome: Outcome) {
        let ejected = pool.state.withLock { state in
            let before = state.ejected
            if lastIndex >= 0, lastGeneration == state.generation, lastIndex < state.nodes.count,
               state.nodes[lastIndex].node.id == node.id {
                state.mark(at: lastIndex, outcome: outcome)
            } else {
                state.mark(node.id, outcome: outcome)
            }
            return state.ejected > before
        }
        if ejected { pool.reportEjection(node, outcome: outcome) }
    }

    func hasTried(_ id: String) -> Bool {
        guard let firstTried else { return false }
        return firstTried == id || moreTried.contains(id)
    }

    func remember(_ id: String) {
        if firstTried == nil { firstTried = id } else { moreTried.append(id) }
    }
}
