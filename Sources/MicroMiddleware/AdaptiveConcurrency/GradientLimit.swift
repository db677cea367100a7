/// Netflix concurrency-limits' Gradient2: the limit follows the ratio of a long-term RTT average to the RTT of the
/// latest window. While the window's RTT stays within `tolerance` of the long-term RTT the limit grows by a queue
/// allowance (the square root of the limit); when it rises above it the limit shrinks, by at most half per update
/// before smoothing, so one outlier window cannot collapse it.
///
/// A value type with no synchronisation: `AdaptiveLimiter` keeps it under its lock.
///
/// Behaviour kept from Gradient2:
/// - an application that does not use its limit (`inFlight < limit / 2`) leaves the limit unchanged, so an idle
///   service's limit does not grow without bound (nor shrink on latency it did not cause);
/// - when the long-term RTT is more than twice the window's, it decays by 5% per update, so that after a long
///   overload the limit recovers without waiting for the slow average.
///
/// Not promised: `dropped` has no effect (Gradient2 reacts to latency only; the limiter leaves RTTs of dropped calls
/// out of the window); a new latency level that lasts is learnt as the new normal over about `longWindow` updates,
/// after which the limit grows again.
public struct GradientLimit: Sendable {
    public let minLimit: Int
    public let maxLimit: Int
    public let tolerance: Double
    public let smoothing: Double
    public let longWindow: Int

    /// The limit as a real number: the smoothing moves it by fractions.
    private var estimatedLimit: Double
    /// The long-term RTT in nanoseconds: the plain mean of the first updates, then an exponential moving average.
    private(set) var longRTT: Double = 0
    /// Updates folded into `longRTT`, counted up to the end of the warm-up.
    private var longRTTCount = 0

    public init(
        initialLimit: Int = 20, minLimit: Int = 4, maxLimit: Int = 1000,
        tolerance: Double = 1.5, smoothing: Double = 0.2, longWindow: Int = 600
    ) {
        self.init(AdaptiveConcurrencyConfiguration(
            initialLimit: initialLimit, minLimit: minLimit, maxLimit: maxLimit,
            tolerance: tolerance, smoothing: smoothing, longWindow: longWindow))
    }

    public init(_ configuration: AdaptiveConcurrencyConfiguration) {
        minLimit = configuration.normalizedMinLimit
        maxLimit = configuration.normalizedMaxLimit
        // Below 1 the gradient could never reach 1, and the limit would shrink at the service's normal latency.
        tolerance = configuration.tolerance.isNaN ? 1.5 : max(1, configuration.tolerance)
        smoothing = configuration.smoothing.isNaN ? 0.2 : min(1, max(0.01, configuration.smoothing))
        longWindow = max(1, configuration.longWindow)
        estimatedLimit = Double(configuration.normalizedInitialLimit)
    }

    /// The current limit.
    public var limit: Int { Int(estimatedLimit) }

    /// Folds one window into the limit and returns the new limit.
    ///
    /// - Parameters:
    ///   - shortRTT: the window's RTT in nanoseconds (the limiter passes the mean); values below 1 leave the limit
    ///     unchanged.
    ///   - inFlight: the most calls in flight during the window.
    ///   - dropped: ignored (see the type's documentation).
    public mutating func update(shortRTT: Int64, inFlight: Int, dropped: Bool) -> Int {
        guard shortRTT > 0 else { return limit }
        let short = Double(shortRTT)
        let long = foldLongRTT(short)
        // After a long overload the average is far above today's RTT: pull it down faster than the EMA would.
        if long / short > 2 { longRTT = long * 0.95 }
        // App-limited: a limit that is not used tells nothing about what the service could take.
        if Double(inFlight) < estimatedLimit / 2 { return limit }
        // Above 1 would mean "faster than normal", which is no reason to grow faster; the floor of 0.5 keeps one
        // slow window from halving the limit.
        let gradient = max(0.5, min(1.0, tolerance * long / short))
        let queueSize = estimatedLimit.squareRoot()
        var newLimit = estimatedLimit * gradient + queueSize
        newLimit = estimatedLimit * (1 - smoothing) + newLimit * smoothing
        estimatedLimit = min(Double(maxLimit), max(Double(minLimit), newLimit))
        return limit
    }

    /// Adds a sample to the long-term RTT and returns it.
    private mutating func foldLongRTT(_ sample: Double) -> Double {
        // The first few samples are averaged plainly, so a first outlier does not weigh as if it were history.
        let warmUp = min(10, longWindow)
        if longRTTCount < warmUp {
            longRTTCount += 1
            longRTT += (sample - longRTT) / Double(longRTTCount)
        } else {
            let factor = 2 / (Double(longWindow) + 1)
            longRTT += (sample - longRTT) * factor
        }
        return longRTT
    }
}
