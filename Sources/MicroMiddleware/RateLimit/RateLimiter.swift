internal import Synchronization

/// A token bucket, implemented as GCRA (the generic cell rate algorithm) on one atomic: lock-free and safe
/// to share between threads.
///
/// The state is the theoretical arrival time (TAT): the time at which the bucket would be full again. A call at
/// `now` is admitted when `max(TAT, now) - now <= (burst - 1) * interval`, and then moves the TAT on by one
/// interval. After idleness `burst` calls pass at once; after that one call per interval.
///
/// Rounding: the interval is `1e9 / ratePerSecond` nanoseconds rounded to the nearest integer (at least 1), and
/// all later arithmetic is on integers, so there is no drift: over a time `T` exactly `T / interval + burst`
/// calls pass (within one). The effective rate is `1e9 / interval`, which differs from the configured rate by at
/// most half a nanosecond per interval (e.g. 7/s: interval 142_857_143 ns, 6.99999999/s); rates above 2e9/s all
/// round to 1 ns.
///
/// Not promised: fairness between callers (a caller that retries in a tight loop wins more often), or any
/// ordering. Times are monotonic nanoseconds passed in by the caller; a time earlier than the TAT's base is
/// harmless (it only admits less).
public final class RateLimiter: Sendable {
    /// The TAT in monotonic nanoseconds; `Int64.min` until the first admitted call. Changed only by
    /// compare-exchange; a refused call does not write it.
    private let theoreticalArrival = Atomic<Int64>(.min)
    /// Nanoseconds per token.
    let interval: Int64
    /// How far the TAT may run ahead of `now`: `(burst - 1) * interval`, saturating.
    let tolerance: Int64

    public init(ratePerSecond: Double, burst: Int) {
        precondition(ratePerSecond > 0 && ratePerSecond.isFinite, "ratePerSecond must be > 0")
        precondition(burst >= 1, "burst must be >= 1")
        interval = Self.interval(ratePerSecond: ratePerSecond)
        tolerance = Self.tolerance(interval: interval, burst: burst)
    }

    /// Takes one token if there is one at `now`; a refused call changes nothing.
    public func tryAcquire(now: Int64) -> Bool {
        var current = theoreticalArrival.load(ordering: .relaxed)
        while true {
            guard let next = Self.admit(tat: current, now: now, interval: interval, tolerance: tolerance) else {
                return false
            }
            // Relaxed is enough: the TAT guards nothing but itself.
            let (exchanged, original) = theoreticalArrival.compareExchange(
                expected: current, desired: next, ordering: .relaxed
            )
            if exchanged { return true }
            current = original
        }
    }

    /// Nanoseconds from `now` until one token is available; 0 if one is available now.
    public func retryAfter(now: Int64) -> Int64 {
        Self.retryAfter(tat: theoreticalArrival.load(ordering: .relaxed), now: now, tolerance: tolerance)
    }

    // MARK: - GCRA arithmetic, shared with KeyedRateLimiter

    /// `1e9 / ratePerSecond` rounded to the nearest nanosecond, at least 1.
    static func interval(ratePerSecond: Double) -> Int64 {
        let nanoseconds = (1e9 / ratePerSecond).rounded()
        // A rate so low that the interval does not fit: one token per Int64.max ns (292 years).
        guard nanoseconds < Double(Int64.max) else { return .max }
        return max(1, Int64(nanoseconds))
    }

    static func tolerance(interval: Int64, burst: Int) -> Int64 {
        let (result, overflow) = interval.multipliedReportingOverflow(by: Int64(burst - 1))
        return overflow ? .max : result
    }

    /// The new TAT if a call at `now` is admitted, nil if it is refused.
    static func admit(tat: Int64, now: Int64, interval: Int64, tolerance: Int64) -> Int64? {
        let base = max(tat, now)
        // base >= now, so the difference is >= 0; it overflows only for times near the bounds of Int64.
        let (ahead, overflow) = base.subtractingReportingOverflow(now)
        guard !overflow, ahead <= tolerance else { return nil }
        let (next, overflow2) = base.addingReportingOverflow(interval)
        return overflow2 ? .max : next
    }

    static func retryAfter(tat: Int64, now: Int64, tolerance: Int64) -> Int64 {
        let base = max(tat, now)
        let (ahead, overflow) = base.subtractingReportingOverflow(now)
        if overflow { return .max }
        return max(0, ahead - tolerance)
    }
}
