/// Settings of a circuit breaker (``BreakerState``).
///
/// Values are taken as given, with these clamps applied by ``BreakerState``: `buckets` below 1 counts as 1,
/// `halfOpenProbes` below 1 counts as 1, a window shorter than `buckets` nanoseconds gets 1 ns buckets, and
/// `maxOpenDuration` shorter than `openDuration` counts as `openDuration`. Nothing is validated beyond that.
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// The length of the sliding window over which the failure ratio is judged.
    public var window: Duration = .seconds(10)
    /// The window is a ring of this many buckets of `window / buckets` each; a bucket is forgotten as a whole
    /// once it falls out of the window, so the window's effective length varies by up to one bucket.
    public var buckets: Int = 10
    /// The failure ratio is judged only once the window holds at least this many calls.
    public var minimumCalls: Int = 20
    /// Opens when failures / calls in the window reach this (0...1), with at least `minimumCalls` calls and at
    /// least one failure.
    public var failureRatio: Double = 0.5
    /// Also opens after this many failures in a row, whatever the window says; 0 turns this off.
    public var consecutiveFailures: Int = 5
    /// How long it stays open the first time; each failed half-open round doubles it, up to `maxOpenDuration`.
    /// A close resets it to this.
    public var openDuration: Duration = .seconds(5)
    public var maxOpenDuration: Duration = .seconds(60)
    /// Half-open: at most this many probes in flight at once; this many successful probes close it; one failed
    /// probe opens it again.
    public var halfOpenProbes: Int = 3

    public init() {}

    public init(
        window: Duration = .seconds(10),
        buckets: Int = 10,
        minimumCalls: Int = 20,
        failureRatio: Double = 0.5,
        consecutiveFailures: Int = 5,
        openDuration: Duration = .seconds(5),
        maxOpenDuration: Duration = .seconds(60),
        halfOpenProbes: Int = 3
    ) {
        self.window = window
        self.buckets = buckets
        self.minimumCalls = minimumCalls
        self.failureRatio = failureRatio
        self.consecutiveFailures = consecutiveFailures
        self.openDuration = openDuration
        self.maxOpenDuration = maxOpenDuration
        self.halfOpenProbes = halfOpenProbes
    }
}
