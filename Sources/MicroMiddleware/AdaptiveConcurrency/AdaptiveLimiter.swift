import Synchronization

/// A server-side concurrency limit that adapts to the service's latency (Netflix concurrency-limits, as Envoy's
/// adaptive concurrency filter uses it): calls are admitted while fewer than `limit` are in flight, and completed
/// calls are sampled in windows from which `GradientLimit` or `AIMDLimit` computes the next limit.
///
/// Use: `tryAcquire()` before handling a call; if it returns true, `release(rttNanoseconds:dropped:now:)` exactly
/// once when the call completes. A refused call should be answered at once with a "resource exhausted"/overload
/// status and not released.
///
/// Thread-safe. `tryAcquire` takes no lock (two atomic operations, three when refused); `release` takes a lock to add
/// its sample to the window, and runs the algorithm when the window closes.
///
/// Not promised:
/// - that the limit is exact under bursts from many threads: an acquire adds itself to the count before comparing,
///   so a burst may see the count one (or a few) above the real in-flight number and refuse a call there was room
///   for. It never admits more than the limit it read;
/// - that calls admitted before the limit was lowered are bounded by the new limit (they drain);
/// - any particular order between a window's samples and the updates of concurrent releases.
public final class AdaptiveLimiter: Sendable {
    public let configuration: AdaptiveConcurrencyConfiguration

    /// The current limit, written under `window`'s lock and read without it by `tryAcquire`.
    private let currentLimit: Atomic<Int>
    /// Calls admitted and not yet released (plus, for an instant, acquires about to be refused).
    private let inFlightCount = Atomic<Int>(0)
    /// Calls refused since creation.
    private let rejectedCount = Atomic<Int>(0)
    /// The open window and the algorithm's state; guarded by its mutex.
    private let window: Mutex<Window>
    private let updateIntervalNanos: Int64
    private let sampleWindow: Int
    /// A single RTT is capped here so that the window's sum cannot overflow.
    private let maxRTT: Int64

    /// The algorithm's state.
    enum Algorithm {
        case gradient(GradientLimit)
        case aimd(AIMDLimit)
    }

    /// The samples of the window being collected, and the algorithm they are fed to.
    struct Window {
        var algorithm: Algorithm
        /// Samples in the window, dropped ones included.
        var count = 0
        /// Samples whose RTT is in `rttSum` (not dropped).
        var rttCount = 0
        var rttSum: Int64 = 0
        /// The most calls in flight seen by a release of the window (counting the releasing call).
        var maxInFlight = 0
        /// A call of the window was dropped (or, for AIMD, took longer than the threshold).
        var dropped = false
        /// `now` of the window's first sample.
        var start: Int64 = 0
    }

    public init(_ configuration: AdaptiveConcurrencyConfiguration = AdaptiveConcurrencyConfiguration()) {
        self.configuration = configuration
        let algorithm: Algorithm
        switch configuration.algorithm {
        case .gradient: algorithm = .gradient(GradientLimit(configuration))
        case .aimd: algorithm = .aimd(AIMDLimit(configuration))
        }
        currentLimit = Atomic(configuration.normalizedInitialLimit)
        window = Mutex(Window(algorithm: algorithm))
        updateIntervalNanos = AdaptiveConcurrencyConfiguration.nanoseconds(configuration.updateInterval)
        sampleWindow = max(1, configuration.sampleWindow)
        maxRTT = Int64.max / Int64(sampleWindow + 1)
    }

    /// The current limit.
    public var limit: Int { currentLimit.load(ordering: .relaxed) }
    /// Calls admitted and not yet released.
    public var inFlight: Int { max(0, inFlightCount.load(ordering: .relaxed)) }
    /// Calls refused since creation.
    public var rejected: Int { rejectedCount.load(ordering: .relaxed) }

    /// Admits a call if fewer than `limit` are in flight. A true result must be matched by one `release`.
    public func tryAcquire() -> Bool {
        // Add first and undo on refusal: wait-free, and never over the limit read here.
        let count = inFlightCount.wrappingAdd(1, ordering: .relaxed).newValue
        if count <= currentLimit.load(ordering: .relaxed) { return true }
        inFlightCount.wrappingSubtract(1, ordering: .relaxed)
        rejectedCount.wrappingAdd(1, ordering: .relaxed)
        return false
    }

    /// Ends an admitted call without a latency sample (a stream, whose length says nothing about load).
    public func releaseWithoutSample() {
        inFlightCount.wrappingSubtract(1, ordering: .relaxed)
    }

    /// Ends an admitted call and samples it.
    ///
    /// - Parameters:
    ///   - rttNanoseconds: how long the call took (negative is taken as 0).
    ///   - dropped: the call timed out or failed for overload; its RTT is then left out of the window's RTT (a
    ///     timeout or a fast refusal says nothing of the service time) but the window counts as having dropped.
    ///   - now: monotonic nanoseconds, for the update interval.
    public func release(rttNanoseconds: Int64, dropped: Bool, now: Int64) {
        let inFlightAtRelease = inFlightCount.wrappingSubtract(1, ordering: .relaxed).oldValue
        let rtt = min(maxRTT, max(0, rttNanoseconds))
        window.withLock { w in
            if w.count == 0 { w.start = now }
            w.count += 1
            w.maxInFlight = max(w.maxInFlight, inFlightAtRelease)
            if dropped {
                w.dropped = true
            } else {
                w.rttCount += 1
                w.rttSum += rtt
                if case .aimd(let limit) = w.algorithm, rtt > limit.latencyThreshold { w.dropped = true }
            }
            // Subtraction of two monotonic readings; a caller's older `now` only delays the update.
            let elapsed = now &- w.start
            guard w.count >= sampleWindow || elapsed >= updateIntervalNanos else { return }
            if let newLimit = Self.close(&w) { currentLimit.store(newLimit, ordering: .relaxed) }
        }
    }

    /// Runs the algorithm on the window and opens the next one; returns the new limit, or nil when the algorithm
    /// had nothing to learn from (a gradient window of dropped calls only).
    private static func close(_ w: inout Window) -> Int? {
        let shortRTT = w.rttCount > 0 ? w.rttSum / Int64(w.rttCount) : 0
        let newLimit: Int?
        switch w.algorithm {
        case .gradient(var limit):
            if w.rttCount > 0 {
                newLimit = limit.update(shortRTT: shortRTT, inFlight: w.maxInFlight, dropped: w.dropped)
            } else {
                newLimit = nil
            }
            w.algorithm = .gradient(limit)
        case .aimd(var limit):
            newLimit = limit.update(shortRTT: shortRTT, inFlight: w.maxInFlight, dropped: w.dropped)
            w.algorithm = .aimd(limit)
        }
        w = Window(algorithm: w.algorithm)
        return newLimit
    }
}
