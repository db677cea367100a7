public import MicroCore

/// What a handler knows about the call it serves. While the handler runs, its deadline is kept in the task's
/// `CallScope`, so that calls it makes downstream inherit it: each hop uses the earlier of the remaining budget
/// and its own timeout.
public struct RPCContext: Sendable {
    public var service: String
    public var endpoint: String
    /// When the caller's budget runs out, measured from the request's arrival; nil without a deadline. (Every
    /// deadline in the API is a `Timestamp`; `.instant` gives the `ContinuousClock` reading.)
    public var deadline: Timestamp?
    public var metadata: Metadata
    /// The remote peer, as text.
    public var peer: String
    /// 1 for a first attempt, 2 for the first retry, ...
    public var attempt: UInt16
    /// The subject of the peer's verified TLS client certificate (mTLS), one line; nil without one.
    public var peerCertificateSubject: String? {
        get { credentials?.peerCertificateSubject }
        set { credentials = Credentials(peerCertificateSubject: newValue, identity: identity) }
    }
    /// Who the caller is, once a middleware authenticated it (a bearer token, the mTLS certificate); nil before.
    public var identity: PeerIdentity? {
        get { credentials?.identity }
        set { credentials = Credentials(peerCertificateSubject: peerCertificateSubject, identity: newValue) }
    }
    /// The two above, by reference: most calls have neither, and the context is made and passed on every call.
    /// Internal (not private) so that the memberwise initializer is too: the server builds every context with it
    /// (see ``init(service:endpoint:deadline:metadata:peer:attempt:peerCertificateSubject:identity:receivedAt:)``).
    var credentials: Credentials?
    /// When the transport received the request (what the deadline counts from): a middleware's clock reading for
    /// free, e.g. the start of a latency measurement.
    public var receivedAt: Timestamp

    /// The deadline of the call the current task serves, if any: what a ``Client`` call made from it inherits.
    public static var inheritedDeadline: Timestamp? { CallScope.current?.deadline }

    /// The budget left, or nil without a deadline.
    public var remaining: Duration? { deadline.map { Timestamp.now.duration(to: $0) } }

    /// The server-side deadline of a request that arrived at `receivedAt` with `head`'s budget, or nil without one.
    static func deadline(of head: RequestHead, receivedAt: Timestamp) -> Timestamp? {
        guard head.timeoutMicroseconds > 0 else { return nil }
        let budget = head.timeoutMicroseconds >= UInt64(Int64.max / 1000) ? Int64.max : Int64(head.timeoutMicroseconds) * 1000
        return receivedAt.advanced(byNanoseconds: budget)
    }
}

extension RPCContext {
    /// In an extension, so that the struct keeps its memberwise initializer. That one builds the value at once;
    /// an initializer that assigns field by field builds it in a `self` variable, and the optimizer keeps a copy
    /// of it on return (a retain and a release of each reference, per call: counted on the server's path).
    public init(service: String, endpoint: String, deadline: Timestamp? = nil, metadata: Metadata = Metadata(),
                peer: String = "", attempt: UInt16 = 1, peerCertificateSubject: String? = nil, identity: PeerIdentity? = nil,
                receivedAt: Timestamp? = nil) {
        self.receivedAt = receivedAt ?? .now
        self.service = service
        self.endpoint = endpoint
        self.deadline = deadline
        self.metadata = metadata
        self.peer = peer
        self.attempt = attempt
        if peerCertificateSubject != nil || identity != nil {
            credentials = Credentials(peerCertificateSubject: peerCertificateSubject, identity: identity)
        }
    }
}

extension RPCContext {
    /// Who the caller is (immutable; a change makes a new one).
    final class Credentials: Sendable {
        let peerCertificateSubject: String?
        let identity: PeerIdentity?

        init(peerCertificateSubject: String?, identity: PeerIdentity?) {
            self.peerCertificateSubject = peerCertificateSubject
            self.identity = identity
        }
    }
}
