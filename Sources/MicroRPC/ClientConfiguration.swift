public import MicroCore

/// How a ``Client`` calls, unless a call's ``CallOptions`` say otherwise.
public struct ClientConfiguration: Sendable {
    /// The timeout of a call that sets none (the deadline a handler inherited still applies when earlier).
    public var defaultTimeout: Duration = .seconds(30)
    /// Retries after the first attempt.
    public var retries: Int = 3
    public var backoff = Backoff()
    /// The share of calls that may be retried, plus a floor per second.
    public var retryBudget = RetryBudget.Configuration()
    /// Codecs for typed calls, by content type.
    public var codecs: CodecSet = .standard
    /// The content type of typed calls whose request is not a protobuf message or raw bytes.
    public var defaultContentType: String = ContentType.json
    /// Where ``Client/publish(topic:message:metadata:)`` sends messages; nil: publishing throws ``RPCUsageError``.
    public var broker: (any Broker)? = nil

    public init() {}
}
