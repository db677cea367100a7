/// How a node is chosen among those that pass the filters.
public enum Strategy: String, Sendable, Hashable, CaseIterable {
    /// Uniformly at random.
    case random
    /// In turn; exact shares while the set of nodes does not change.
    case roundRobin
    /// Of two nodes taken at random, the one with fewer calls outstanding ("power of two choices").
    case leastOutstanding
    /// In proportion to the integer in the node's metadata under ``SelectorConfiguration/weightKey``
    /// (smooth weighted round robin, as nginx: exact shares, evenly interleaved).
    case weighted
    /// Of two nodes taken at random, the one with the lower peak-EWMA latency x (outstanding + 1), as Finagle
    /// and linkerd do: a latency above the average replaces it at once, lower ones pull it down with the decay time.
    case peakEWMA
}
