/// Additive increase, multiplicative decrease (Netflix concurrency-limits' AIMDLimit): a window with a dropped call
/// or an RTT over `latencyThreshold` multiplies the limit by `backoffRatio`; a window without, in which the limit
/// was used (`inFlight >= limit / 2`), adds 1.
///
/// A value type with no synchronisation: `AdaptiveLimiter` keeps it under its lock.
///
/// Not promised: that the limit tracks latency below the threshold (AIMD only sees drops and threshold crossings);
/// the limit shrinks by at least 1 per backoff while above `minLimit`, so small limits fall a little faster than the
/// ratio alone says.
public struct AIMDLimit: Sendable {
    public let minLimit: Int
    public let maxLimit: Int
    public let backoffRatio: Double
    /// RTTs above this, in nanoseconds, count as drops.
    public let latencyThreshold: Int64

    /// The current limit.
    public private(set) var limit: Int

    public init(
        initialLimit: Int = 20, minLimit: Int = 4, maxLimit: Int = 1000,
        backoffRatio: Double = 0.9, latencyThreshold: Duration = .seconds(5)
    ) {
        self.init(AdaptiveConcurrencyConfiguration(
            algorithm: .aimd, initialLimit: initialLimit, minLimit: minLimit, maxLimit: maxLimit,
            latencyThreshold: latencyThreshold, backoffRatio: backoffRatio))
    }

    public init(_ configuration: AdaptiveConcurrencyConfiguration) {
        minLimit = configuration.normalizedMinLimit
        maxLimit = configuration.normalizedMaxLimit
        backoffRatio = configuration.backoffRatio.isNaN ? 0.9 : min(0.99, max(0.1, configuration.backoffRatio))
        latencyThreshold = AdaptiveConcurrencyConfiguration.nanoseconds(configuration.latencyThreshold)
        limit = configuration.normalizedInitialLimit
    }

    /// Folds one window into the limit and returns the new limit.
    ///
    /// - Parameters:
    ///   - shortRTT: the window's RTT in nanoseconds; above `latencyThreshold` it counts as a drop.
    ///   - inFlight: the most calls in flight during the window.
    ///   - dropped: whether a call of the window timed out or failed for overload.
    public mutating func update(shortRTT: Int64, inFlight: Int, dropped: Bool) -> Int {
        if dropped || shortRTT > latencyThreshold {
            // At least 1 down: with a ratio near 1, truncation alone would leave a small limit where it is.
            limit = max(minLimit, min(limit - 1, Int(Double(limit) * backoffRatio)))
        } else if inFlight * 2 >= limit {
            limit = min(maxLimit, limit + 1)
        }
        return limit
    }
}
