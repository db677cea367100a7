public import MicroCore

/// What a handler knows about the call it serves. While the handler runs, its deadline is kept in the task's
/// `CallScope`, so that calls it makes downstream inherit it: each hop uses the earlier of the remaining budget
/// and its own timeout.
public struct RPCContext: Sendable {
    public var service: String
    public var endpoint: String
    /// When the caller's budget runs out, measured from the request's arrival; nil without a deadline.
    public var deadline: ContinuousClock.Instant? {
        get { deadlineTimestamp?.instant }
        set { deadlineTimestamp = newValue.map(Timestamp.init) }
    }
    /// ``deadline`` as a ``Timestamp`` (what is stored: no conversion).
    var deadlineTimestamp: Timestamp?
    public var metadata: Metadata
    /// The remote peer, as text.
    public var peer: String
    /// 1 for a first attempt, 2 for the first retry, ...
    public var attempt: UInt16

    public init(service: String, endpoint: String, deadline: ContinuousClock.Instant? = nil, metadata: Metadata = [:],
                peer: String = "", attempt: UInt16 = 1) {
        self.init(service: service, endpoint: endpoint, deadline: deadline.map(Timestamp.init), metadata: metadata,
                  peer: peer, attempt: attempt)
    }

    init(service: String, endpoint: String, deadline: Timestamp?, metadata: Metadata, peer: String, attempt: UInt16) {
        self.service = service
        self.endpoint = endpoint
        self.deadlineTimestamp = deadline
        self.metadata = metadata
        self.peer = peer
        self.attempt = attempt
    }

    /// The deadline of the call the current task serves, if any: what a ``Client`` call made from it inherits.
    public static var inheritedDeadline: ContinuousClock.Instant? { CallScope.current?.deadline?.instant }

    /// The budget left, or nil without a deadline.
    public var remaining: Duration? { deadlineTimestamp.map { Timestamp.now.duration(to: $0) } }

    /// The server-side deadline of a request that arrived at `receivedAt` with `head`'s budget, or nil without one.
    static func deadline(of head: RequestHead, receivedAt: Timestamp) -> Timestamp? {
        guard head.timeoutMicroseconds > 0 else { return nil }
        let budget = head.timeoutMicroseconds >= UInt64(Int64.max / 1000) ? Int64.max : Int64(head.timeoutMicroseconds) * 1000
        return receivedAt.advanced(byNanoseconds: budget)
    }
}
