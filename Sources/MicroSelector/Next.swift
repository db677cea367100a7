public import MicroRegistry

/// The nodes for one call and its retries, from ``Selector/select(_:options:)``.
///
/// Each ``next()`` picks by the strategy among the nodes that pass the filters and are not ejected, preferring
/// nodes this `Next` has not returned yet (so a retry lands on another node); only when every such node was
/// tried does it return one again. When ejection or filters leave nothing, it still returns an ejected node
/// that passes the filters rather than nothing ("panic mode"). Not thread-safe: use it from one task.
public final class Next {
    /// The registry-fed pool it picks from; nil for a `Next` made by another ``Selector`` from a closure.
    let pool: ServicePool?
    /// A custom selector's pick, used instead of the pool.
    let customPick: (() throws -> Node)?
    let customService: String
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

    init(pool: ServicePool, strategy: Strategy, filters: [Filter], canary: [String: Int]?) {
        self.pool = pool
        self.customPick = nil
        self.customService = pool.name
        self.strategy = strategy
        self.filters = filters
        self.canary = canary
    }

    /// A `Next` for selectors of your own: each ``next()`` calls `pick`, which should prefer nodes it has not
    /// returned yet (retries go to another node).
    public init(service: String, pick: @escaping () throws -> Node) {
        self.pool = nil
        self.customPick = pick
        self.customService = service
        self.strategy = .roundRobin
        self.filters = []
        self.canary = nil
    }

    /// The service this `Next` selects for.
    public var service: String { customService }

    /// The next node; counted outstanding until marked. Throws ``SelectorError/noneAvailable(_:)`` when the
    /// service has no node that passes the filters.
    public func next() throws -> Node {
        guard let pool else { return try customPick!() }
        return try pool.state.withLock { state throws(SelectorError) -> Node in
            try state.pick(for: self)
        }
    }

    /// Reports the outcome of a call to `node`, which this `Next` returned: the same as
    /// ``Selector/mark(_:node:outcome:)`` on its selector, without looking the service and the node up. (A
    /// `Next` made from a closure has no pool: mark through its selector instead.)
    public func mark(_ node: Node, outcome: Outcome) {
        guard let pool else { return }
        pool.state.withLock { state in
            if lastIndex >= 0, lastGeneration == state.generation, lastIndex < state.nodes.count,
               state.nodes[lastIndex].node.id == node.id {
                state.mark(at: lastIndex, outcome: outcome)
            } else {
                state.mark(node.id, outcome: outcome)
            }
        }
    }

    func hasTried(_ id: String) -> Bool {
        guard let firstTried else { return false }
        return firstTried == id || moreTried.contains(id)
    }

    func remember(_ id: String) {
        if firstTried == nil { firstTried = id } else { moreTried.append(id) }
    }
}
