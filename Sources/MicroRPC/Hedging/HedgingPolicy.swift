/// Hedged requests (Dean and Barroso's "The Tail at Scale"; gRPC's hedging policy): when an idempotent unary call
/// has no answer after a delay, a second attempt goes to another node; the first answer wins and the other attempt
/// is cancelled on the wire (CANCEL). Hedges are attempts: they count against the call's retries and spend the
/// client's retry budget, so hedges and retries together stay within one budget.
///
/// Applies to unary calls that are idempotent (``CallOptions/idempotent``) and choose their node through the
/// selector. Streams are never hedged.
public struct HedgingPolicy: Sendable, Hashable {
    /// When a hedge goes.
    public enum Delay: Sendable, Hashable {
        /// After this long without an answer.
        case fixed(Duration)
        /// After the given quantile (e.g. 0.95) of the endpoint's recent successful attempts' latency, at least
        /// ``HedgingPolicy/minimumDelay``; ``HedgingPolicy/initialDelay`` until enough attempts were seen.
        case percentile(Double)
    }

    public var delay: Delay = .percentile(0.95)
    /// The least delay a percentile gives (so a very fast endpoint is not hedged on every call).
    public var minimumDelay: Duration = .microseconds(500)
    /// The delay of a percentile policy before the endpoint has enough samples (50).
    public var initialDelay: Duration = .milliseconds(50)
    /// Hedges at most per call (each needs budget).
    public var maxHedges: Int = 1

    public init(delay: Delay = .percentile(0.95), maxHedges: Int = 1) {
        self.delay = delay
        self.maxHedges = maxHedges
    }
}
