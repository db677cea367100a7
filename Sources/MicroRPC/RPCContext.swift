public import MicroFraming
internal import MicroTransport

/// What a handler knows about the call it serves. While the handler runs, its deadline is kept in the task's
/// `CallScope`, so that calls it makes downstream inherit it: each hop uses the earlier of the remaining budget
/// and its own timeout.
public struct RPCContext: Sendable {
    public var service: String
    public var endpoint: String
    /// When the caller's budget runs out, measured from the request's arrival; nil without a deadline.
    public var deadline: ContinuousClock.Instant?
    public var metadata: Metadata
    /// The remote peer, as text.
    public var peer: String
    /// 1 for a first attempt, 2 for the first retry, ...
    public var attempt: UInt16

    public init(service: String, endpoint: String, deadline: ContinuousClock.Instant? = nil, metadata: Metadata = [:],
                peer: String = "", attempt: UInt16 = 1) {
        self.service = service
        self.endpoint = endpoint
        self.deadline = deadline
        self.metadata = metadata
        self.peer = peer
        self.attempt = attempt
    }

    /// The deadline of the call the current task serves, if any: what a ``Client`` call made from it inherits.
    public static var inheritedDeadline: ContinuousClock.Instant? { CallScope.current?.deadline }

    /// The budget left, or nil without a deadline.
    public var remaining: Duration? { deadline.map { ContinuousClock.now.duration(to: $0) } }
}
