/// How an `AdaptiveLimiter` finds its concurrency limit: the algorithm, the bounds, and how samples are grouped.
///
/// Values are taken as given; the limits normalise them when they are built (bounds at least 1 and ordered, the
/// initial limit clamped into them, ratios clamped into their ranges), so a configuration is never rejected.
public struct AdaptiveConcurrencyConfiguration: Sendable {
    /// The algorithm that turns a window of samples into a new limit.
    public enum Algorithm: Sendable, Hashable {
        /// Netflix Gradient2: compares the window's RTT with a long-term RTT average; reacts to queueing.
        case gradient
        /// Additive increase, multiplicative decrease on dropped calls and on RTTs over `latencyThreshold`.
        case aimd
    }

    public var algorithm: Algorithm
    /// The limit before the first update.
    public var initialLimit: Int
    /// The limit never goes below this (so a slow service still serves some calls).
    public var minLimit: Int
    /// The limit never goes above this.
    public var maxLimit: Int
    /// Samples (completed calls) per limit update.
    public var sampleWindow: Int
    /// A window with at least one sample is also closed when this much time has passed since its first sample,
    /// so that a quiet service still updates its limit.
    public var updateInterval: Duration

    // Gradient.
    /// How much the window's RTT may exceed the long-term RTT before the limit shrinks (1.5 = 50% more).
    public var tolerance: Double
    /// The weight of a new limit against the current one, in (0, 1]: 1 jumps, smaller values damp.
    public var smoothing: Double
    /// The number of updates the long-term RTT (an exponential moving average) spans.
    public var longWindow: Int

    // AIMD.
    /// A window whose RTT is over this counts as dropped.
    public var latencyThreshold: Duration
    /// The factor a drop multiplies the limit by, in (0, 1).
    public var backoffRatio: Double

    public init(
        algorithm: Algorithm = .gradient,
        initialLimit: Int = 20,
        minLimit: Int = 4,
        maxLimit: Int = 1000,
        sampleWindow: Int = 100,
        updateInterval: Duration = .milliseconds(100),
        tolerance: Double = 1.5,
        smoothing: Double = 0.2,
        longWindow: Int = 600,
        latencyThreshold: Duration = .seconds(5),
        backoffRatio: Double = 0.9
    ) {
        self.algorithm = algorithm
        self.initialLimit = initialLimit
        self.minLimit = minLimit
        self.maxLimit = maxLimit
        self.sampleWindow = sampleWindow
        self.updateInterval = updateInterval
        self.tolerance = tolerance
        self.smoothing = smoothing
        self.longWindow = longWindow
        self.latencyThreshold = latencyThreshold
        self.backoffRatio = backoffRatio
    }

    /// `minLimit` made at least 1.
    var normalizedMinLimit: Int { max(1, minLimit) }
    /// `maxLimit` made at least `normalizedMinLimit`.
    var normalizedMaxLimit: Int { max(normalizedMinLimit, maxLimit) }
    /// `initialLimit` clamped into the bounds.
    var normalizedInitialLimit: Int { min(normalizedMaxLimit, max(normalizedMinLimit, initialLimit)) }

    /// A duration in nanoseconds, saturating instead of overflowing; negative durations are 0.
    static func nanoseconds(_ d: Duration) -> Int64 {
        let c = d.components
        if c.seconds < 0 { return 0 }
        if c.seconds >= Int64.max / 1_000_000_000 { return .max }
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
