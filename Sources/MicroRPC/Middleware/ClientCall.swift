public import MicroCore

/// What a ``ClientMiddleware`` sees of one logical call (with all its attempts, retries and hedges).
///
/// A middleware may change `metadata` (it is sent with every attempt) and `options` before handing the call on;
/// the deadline is fixed before the chain runs (change `options.timeout` has no effect on it).
public struct ClientCall: Sendable {
    /// What kind of call this is.
    public enum Kind: Sendable, Hashable {
        case unary
        /// Opening a bidirectional stream (the chain sees the opening, not the stream's messages).
        case stream
    }

    public var service: String
    public var endpoint: String
    public var contentType: String
    public var metadata: Metadata
    public var options: CallOptions
    /// When the call's budget runs out: the earlier of its timeout and the deadline it inherited.
    public let deadline: Timestamp
    public let kind: Kind
    /// When the logical call began (before the chain ran).
    public let startedAt: Timestamp
    /// Set it to a new ``CallSummary`` to learn the call's attempts and nodes (nil: the client records nothing).
    public var summary: CallSummary?

    public init(service: String, endpoint: String, contentType: String, metadata: Metadata, options: CallOptions,
                deadline: Timestamp, kind: Kind, startedAt: Timestamp) {
        self.service = service
        self.endpoint = endpoint
        self.contentType = contentType
        self.metadata = metadata
        self.options = options
        self.deadline = deadline
        self.kind = kind
        self.startedAt = startedAt
    }
}
