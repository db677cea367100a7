public import MicroCore

/// How a ``Client`` calls, unless a call's ``CallOptions`` say otherwise.
public struct ClientConfiguration: Sendable {
    /// The timeout of a call that sets none (the deadline a handler inherited still applies when earlier).
    public var defaultTimeout: Duration = .seconds(30)
    /// Retries after the first attempt.
    public var retries: Int = 3
    public var backoff = Backoff()
    /// Wait for ready (gRPC's name; Finagle queues the same way): a call that finds no node of its service, or
    /// cannot read it from the registry, waits until the watch brings a node or the deadline passes, then fails
    /// with UNAVAILABLE naming the service. Off: it fails at once (after one suspension, so that callers retrying
    /// in a loop never hold a thread). Either way no attempt is spent on it.
    public var waitForNode = true
    /// The share of calls that may be retried, plus a floor per second.
    public var retryBudget = RetryBudget.Configuration()
    /// Codecs for typed calls, by content type.
    public var codecs: CodecSet = .standard
    /// The content type of typed calls whose request is not a protobuf message or raw bytes.
    public var defaultContentType: String = ContentType.json
    /// Where ``Client/publish(topic:message:metadata:)`` sends messages; nil: publishing throws ``RPCUsageError``.
    public var broker: (any Broker)? = nil
    /// Hedging of idempotent unary calls (nil: none). ``CallOptions/hedging`` overrides it per call.
    public var hedging: HedgingPolicy? = nil
    /// The middleware around every call and every attempt (nil: none, and no cost). Add with ``use(_:)``.
    public var middleware: (any ClientMiddleware)? = nil {
        didSet { specializedMiddleware = nil }
    }
    /// ``middleware`` behind closures specialized for its type, when ``use(_:)`` set it last
    /// (``SpecializedClientMiddleware``).
    @usableFromInline var specializedMiddleware: SpecializedClientMiddleware?

    public init() {}

    /// Adds middleware inside what is there: the first listed runs outermost of those added.
    ///
    /// ```swift
    /// configuration.use {
    ///     LoggingMiddleware()
    ///     CircuitBreakerMiddleware()
    /// }
    /// ```
    ///
    /// Inlined into the caller, where the chain's type is known (see ``SpecializedClientMiddleware``).
    @inlinable
    public mutating func use<M: ClientMiddleware>(@ClientMiddlewareBuilder _ build: () -> M) {
        // An empty chain is no chain: the call path without middleware.
        if M.self == PassThroughClientMiddleware.self { return }
        let added = build()
        if let existing = middleware {
            let chain = ClientMiddlewareChain(AnyClientMiddleware(existing), added)
            middleware = chain
            specializedMiddleware = SpecializedClientMiddleware(chain)
        } else {
            middleware = added
            specializedMiddleware = SpecializedClientMiddleware(added)
        }
    }
}
