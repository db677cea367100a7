import MicroCore

/// One node and what selection knows of it.
struct NodeSlot {
    var node: Node
    var version: Int
    var weight: Int
    /// Calls handed out and not yet marked, plus the `lingering` ones.
    var outstanding = 0
    /// Superseded calls still counted in `outstanding`, until `lingerUntil` (monotonic nanoseconds).
    var lingering = 0
    var lingerUntil: UInt64 = 0
    /// Peak EWMA latency in nanoseconds (0: none observed yet) and when it was last updated.
    var ewma: Double = 0
    var ewmaUpdated: UInt64 = 0
    /// Smooth weighted round robin state.
    var weightCurrent = 0
    var health = NodeHealth()
    /// Nonzero while the node is stale: a re-read after a watch break no longer listed it, but it was kept (see
    /// ``PoolState/resync(with:now:)``) until this monotonic time in nanoseconds.
    var staleUntil: UInt64 = 0
}
