
/// What a transport implements for the sending half of a server's stream.
public protocol ServerStreamOutbound: Sendable {
    /// Sends a part; messages suspend while the stream has no flow-control credit.
    func send(_ part: ServerOutboundPart) async throws(TransportError)
    /// Cancels the stream at both ends. Idempotent.
    func cancel(reason: String)
}

/// A server's side of one stream: the request head (and its first message, if it carried one), then the
/// client's further messages; the handler answers with a head, messages and an end.
///
/// If the handler returns without ending its direction, the transport ends it with an ERROR status, so that no
/// caller waits forever. When the client cancels, ``receive()`` throws `cancelled` and the handler's task is
/// cancelled.
public final class ServerStream: Sendable {
    public let head: RequestHead
    public let inbound: InboundQueue<ServerInboundPart>
    public let outbound: any ServerStreamOutbound
    /// The remote peer's address, as text, when the transport knows it.
    public let peer: String
    /// The subject of the peer's verified TLS certificate (mTLS), one line; nil without one.
    public let peerCertificateSubject: String?

    public init(head: RequestHead, inbound: InboundQueue<ServerInboundPart>, outbound: any ServerStreamOutbound, peer: String,
                peerCertificateSubject: String? = nil) {
        self.head = head
        self.inbound = inbound
        self.outbound = outbound
        self.peer = peer
        self.peerCertificateSubject = peerCertificateSubject
    }

    /// The client's next message, or nil once the client finished.
    public func receive() async throws -> [UInt8]? {
        while let part = try await inbound.next() {
            switch part {
            case .message(let m): return m
            case .end: return nil
            }
        }
        return nil
    }

    public func sendHead(_ head: ResponseHead) async throws(TransportError) { try await outbound.send(.head(head)) }
    public func send(_ message: [UInt8]) async throws(TransportError) { try await outbound.send(.message(message)) }
    /// Ends the server's direction with a final status.
    public func finish(_ trailers: ResponseHead = ResponseHead()) async throws(TransportError) {
        try await outbound.send(.end(trailers))
    }

    /// Answers a unary call in one frame: status OK with `message`, or the given head.
    public func respond(_ message: [UInt8], head: ResponseHead = ResponseHead()) async throws(TransportError) {
        try await outbound.send(.head(head))
        try await outbound.send(.message(message))
        try await outbound.send(.end(head))
    }

    public func cancel(reason: String = "cancelled by the server") { outbound.cancel(reason: reason) }
}
