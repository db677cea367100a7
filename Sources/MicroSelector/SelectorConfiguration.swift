public import MicroCore
/// Settings of ``RegistrySelector``. Defaults follow go-micro, Finagle and Envoy (see docs).
public struct SelectorConfiguration: Sendable, Hashable {
    /// The strategy when a call does not choose one: of two nodes at random, the one with fewer calls outstanding
    /// (Finagle's default), so a slow node, whose calls pile up, gets few new ones. Costs no clock read.
    public var strategy: Strategy = .leastOutstanding
    /// Canary splits: service -> version -> weight, e.g. `["greeter": ["v1": 95, "v2": 5]]`. Calls without a
    /// version filter go to the versions in these proportions (exactly, by smooth weighted round robin over the
    /// versions currently registered; a version with weight 0 or not listed gets no calls while a listed one has
    /// a node available).
    public var canary: [String: [String: Int]] = [:]
    /// The node metadata key read by ``Strategy/weighted``; a missing or unreadable value counts as 1.
    public var weightKey: String = "weight"
    /// Peak EWMA: how fast a low latency pulls the average down (Finagle's default 10 s).
    public var ewmaDecay: Duration = .seconds(10)
    /// Peak EWMA: the latency assumed for a node that has not answered yet.
    public var ewmaDefaultLatency: Duration = .milliseconds(1)
    public var ejection = Ejection()
    public var cache = Cache()

    public init() {}

    /// When a node is taken out of rotation and how it comes back (outlier detection).
    public struct Ejection: Sendable, Hashable {
        /// Off: nodes are never ejected.
        public var enabled = true
        /// Ejected after this many failures in a row.
        public var consecutiveFailures = 5
        /// Ejected when its success rate falls below this (0...1) over a window; 0 turns it off.
        public var successRateThreshold = 0.8
        /// The success rate is judged only after this many calls in the current window.
        public var successRateMinimumCalls = 20
        /// The window restarts after this many calls.
        public var successRateWindow = 100
        /// The n-th ejection in a row lasts `baseTime` x n, at most `maxTime`, jittered.
        public var baseTime: Duration = .seconds(30)
        public var maxTime: Duration = .seconds(300)
        /// Each ejection lasts its time x a random factor in [1 - jitter, 1 + jitter] (at most `maxTime`).
        public var jitter = 0.1
        /// At most this share of a service's nodes is out at once, rounded down, and never all of them
        /// (a single-node service is never emptied). Envoy uses 10%, Finagle's panic mode 50%.
        public var maxEjectedShare = 0.5

        public init() {}
    }

    /// The service cache.
    public struct Cache: Sendable, Hashable {
        /// After the registry's watch breaks, it is opened again after this delay, doubling up to `retryMax`;
        /// meanwhile the cache keeps serving what it knew.
        public var retryFirst: Duration = .milliseconds(100)
        public var retryMax: Duration = .seconds(5)
        /// Stale on error: after a break in the watch, a re-read that would remove more than this share of a
        /// service's nodes (0...1) is not applied at once; the nodes it no longer lists stay, marked stale (Envoy's
        /// panic threshold and gRPC's keeping of the last good picker are the models). 1 turns it off.
        public var staleShare = 0.5
        /// How long a stale node is kept at most: it goes earlier when the first call to it fails, and stops being
        /// stale when the registry lists it again. The default is the default registration TTL.
        public var staleTime: Duration = .seconds(90)

        public init() {}
    }
}
