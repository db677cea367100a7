/// The state machine of a circuit breaker: closed, open, half-open.
///
/// A value type and not thread-safe: the owner guards it (e.g. with a `Mutex`) and passes the time in as
/// monotonic nanoseconds, so it is deterministic. An outcome recorded with a time earlier than one recorded
/// before lands in the newest bucket (the window never moves backwards).
///
/// Use: ``admit(now:)`` before a call; for `.allow` record the outcome with `probe: false`, for `.probe` with
/// `probe: true` (or call ``cancelProbe()`` if the call ended without an outcome); `.reject` makes no call
/// and records nothing. Every `.probe` must end in exactly one `record(…, probe: true, …)` or `cancelProbe()`,
/// otherwise its slot stays taken until the breaker next closes.
///
/// Not promised:
/// - The open -> half-open change is not returned as a ``Transition``: it happens inside ``admit(now:)``, and
///   ``phase`` still reads `.open` after the open time has passed until the next `admit`.
/// - Probe outcomes carry no round: a probe of an earlier half-open round that ends during a later round
///   counts in the later round (it had to outlast the whole open time for that).
/// - The window forgets whole buckets, so it spans between `window - bucket` and `window`.
public struct BreakerState: Sendable {
    public enum Phase: Sendable, Equatable {
        case closed, open, halfOpen
    }

    public enum Decision: Sendable, Equatable {
        /// Closed: make the call; record it with `probe: false`.
        case allow
        /// Half-open: make the call as a probe; record it with `probe: true` or cancel it with ``cancelProbe()``.
        case probe
        /// Do not make the call. While open: the nanoseconds until the breaker goes half-open. While half-open
        /// with all probe slots taken: 0, meaning "unknown, once the probes end" (the caller should not read 0
        /// as "retry at once in a loop").
        case reject(retryAfterNanoseconds: Int64)
    }

    /// A change of phase, returned by ``record(success:probe:now:)`` for logs and metrics.
    public struct Transition: Sendable, Equatable {
        public var from: Phase
        public var to: Phase

        public init(from: Phase, to: Phase) {
            self.from = from
            self.to = to
        }
    }

    /// Successes and failures of one bucket of the window.
    private struct Bucket: Sendable {
        var calls = 0
        var failures = 0
    }

    public let configuration: CircuitBreakerConfiguration

    // Every mutable field below is guarded by the owner of this value (it is not thread-safe).
    public private(set) var phase: Phase = .closed
    /// Failures in a row while closed; reset by a success and by a close.
    public private(set) var consecutiveFailures = 0
    /// Probes handed out and not yet recorded or cancelled.
    public private(set) var probesInFlight = 0
    /// Successful probes in the current half-open round.
    public private(set) var probeSuccesses = 0
    /// The open time the next opening from half-open doubles (the base time after a close).
    public private(set) var currentOpenNanoseconds: Int64
    /// Open: the monotonic time at which it goes half-open.
    private var openUntil: Int64 = 0

    /// Fixed-size ring; the bucket of absolute number `n` (time / bucketWidth) sits at `n % ring.count`.
    private var ring: [Bucket]
    /// The absolute number of the newest bucket in the ring; buckets after it have been zeroed on the way.
    private var headBucket: Int64 = 0
    /// Sums over the ring, kept in step with it so a record costs O(1) (plus the buckets it zeroes).
    private var ringCalls = 0
    private var ringFailures = 0

    private let bucketWidth: Int64
    private let probeLimit: Int
    private let baseOpenNanoseconds: Int64
    private let maxOpenNanoseconds: Int64

    public init(configuration: CircuitBreakerConfiguration = CircuitBreakerConfiguration()) {
        self.configuration = configuration
        let buckets = max(1, configuration.buckets)
        ring = Array(repeating: Bucket(), count: buckets)
        bucketWidth = max(1, Self.nanoseconds(configuration.window) / Int64(buckets))
        probeLimit = max(1, configuration.halfOpenProbes)
        baseOpenNanoseconds = max(0, Self.nanoseconds(configuration.openDuration))
        maxOpenNanoseconds = max(baseOpenNanoseconds, Self.nanoseconds(configuration.maxOpenDuration))
        currentOpenNanoseconds = baseOpenNanoseconds
    }

    /// Calls recorded in the window as of `now` (only while closed; opening and closing empty the window).
    public func callsInWindow(now: Int64) -> Int {
        windowSums(now: now).calls
    }

    /// Failures recorded in the window as of `now`.
    public func failuresInWindow(now: Int64) -> Int {
        windowSums(now: now).failures
    }

    /// Whether the state says nothing a fresh one would not: closed, no failure in a row or in the window, no probe
    /// out. Such a state can be forgotten (the middleware keeps none for a node that never failed).
    func isClean(now: Int64) -> Bool {
        phase == .closed && consecutiveFailures == 0 && probesInFlight == 0 && failuresInWindow(now: now) == 0
    }

    /// Whether a call may go out now. Moves open -> half-open once the open time has passed.
    public mutating func admit(now: Int64) -> Decision {
        switch phase {
        case .closed:
            return .allow
        case .open:
            if now < openUntil {
                return .reject(retryAfterNanoseconds: openUntil - now)
            }
            phase = .halfOpen
            probeSuccesses = 0
            // probesInFlight is kept: stragglers of an earlier round still hold their slots.
            return admitProbe()
        case .halfOpen:
            return admitProbe()
        }
    }

    /// Records the outcome of a call admitted by ``admit(now:)``; returns the phase change it caused, if any.
    ///
    /// - Closed: every outcome counts in the window and the run of failures; a probe that ends after the close
    ///   counts as an ordinary call.
    /// - Open: outcomes are ignored (they describe the time before opening).
    /// - Half-open: only `probe: true` outcomes count; an ordinary call admitted before the opening and ending
    ///   now is ignored.
    public mutating func record(success: Bool, probe: Bool, now: Int64) -> Transition? {
        if probe {
            probesInFlight = max(0, probesInFlight - 1)
        }
        switch phase {
        case .closed:
            return recordClosed(success: success, now: now)
        case .open:
            return nil
        case .halfOpen:
            guard probe else { return nil }
            if success {
                probeSuccesses += 1
                guard probeSuccesses >= probeLimit else { return nil }
                close()
                return Transition(from: .halfOpen, to: .closed)
            }
            // Each failed round doubles the open time, capped.
            currentOpenNanoseconds = min(maxOpenNanoseconds, Self.doubled(currentOpenNanoseconds))
            open(now: now)
            return Transition(from: .halfOpen, to: .open)
        }
    }

    /// A probe ended without an outcome (e.g. cancelled): frees its slot and counts neither way.
    public mutating func cancelProbe() {
        probesInFlight = max(0, probesInFlight - 1)
    }

    // MARK: - Phases

    private mutating func admitProbe() -> Decision {
        guard probesInFlight < probeLimit else {
            return .reject(retryAfterNanoseconds: 0)
        }
        probesInFlight += 1
        return .probe
    }

    private mutating func recordClosed(success: Bool, now: Int64) -> Transition? {
        let index = advance(to: now)
        ring[index].calls += 1
        ringCalls += 1
        if success {
            consecutiveFailures = 0
            // A success lowers the ratio, but it can be the call that reaches minimumCalls: judge anyway.
        } else {
            ring[index].failures += 1
            ringFailures += 1
            consecutiveFailures += 1
        }
        let tooManyInARow = configuration.consecutiveFailures > 0
            && consecutiveFailures >= configuration.consecutiveFailures
        let ratioTooHigh = ringCalls >= configuration.minimumCalls && ringFailures > 0
            && Double(ringFailures) / Double(ringCalls) >= configuration.failureRatio
        guard tooManyInARow || ratioTooHigh else { return nil }
        currentOpenNanoseconds = baseOpenNanoseconds
        open(now: now)
        return Transition(from: .closed, to: .open)
    }

    private mutating func open(now: Int64) {
        phase = .open
        let (until, overflow) = now.addingReportingOverflow(currentOpenNanoseconds)
        openUntil = overflow ? .max : until
        probeSuccesses = 0
        // The window describes the closed period that just ended; the next close starts afresh.
        clearWindow()
    }

    private mutating func close() {
        phase = .closed
        probeSuccesses = 0
        // A clean slate: stragglers still out record as ordinary calls (their decrement is clamped at 0).
        probesInFlight = 0
        consecutiveFailures = 0
        currentOpenNanoseconds = baseOpenNanoseconds
        clearWindow()
    }

    // MARK: - Window

    private mutating func clearWindow() {
        for i in ring.indices { ring[i] = Bucket() }
        ringCalls = 0
        ringFailures = 0
    }

    /// Moves the ring's head to the bucket of `now`, zeroing the buckets passed over; returns its index.
    private mutating func advance(to now: Int64) -> Int {
        let target = now / bucketWidth
        if target > headBucket {
            let steps = target - headBucket
            if steps >= Int64(ring.count) {
                clearWindow()
            } else {
                var n = headBucket + 1
                while n <= target {
                    let i = index(of: n)
                    ringCalls -= ring[i].calls
                    ringFailures -= ring[i].failures
                    ring[i] = Bucket()
                    n += 1
                }
            }
            headBucket = target
        }
        // An earlier time than the head lands in the head bucket.
        return index(of: headBucket)
    }

    private func windowSums(now: Int64) -> (calls: Int, failures: Int) {
        let target = max(now / bucketWidth, headBucket)
        let count = Int64(ring.count)
        var calls = 0
        var failures = 0
        // The ring holds buckets headBucket - count + 1 ... headBucket; keep those still in the window at `now`.
        var n = max(headBucket - count + 1, target - count + 1)
        while n <= headBucket {
            calls += ring[index(of: n)].calls
            failures += ring[index(of: n)].failures
            n += 1
        }
        return (calls, failures)
    }

    private func index(of bucket: Int64) -> Int {
        let count = Int64(ring.count)
        // Euclidean remainder: a negative time still maps into the ring.
        return Int(((bucket % count) + count) % count)
    }

    // MARK: - Arithmetic

    private static func doubled(_ value: Int64) -> Int64 {
        let (result, overflow) = value.multipliedReportingOverflow(by: 2)
        return overflow ? .max : result
    }

    /// Whole nanoseconds of `duration`, saturating at the bounds of Int64.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }
}
