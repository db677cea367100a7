
/// What a transport implements for the sending half of a client's stream.
public protocol ClientStreamOutbound: Sendable {
    /// Sends one message; suspends while the stream has no flow-control credit.
    func send(_ message: [UInt8]) async throws(TransportError)
    /// Ends the client's direction.
    func finish() async throws(TransportError)
    /// Cancels the stream at both ends (CANCEL). Idempotent; never suspends.
    func cancel(reason: String)
}

/// A client's stream: it was opened with a request head; it sends messages and receives the server's head,
/// messages and end. Thread-safe; one task should receive at a time.
///
/// Every stream ends exactly once: with `.end` from ``receive()``, or with a thrown ``TransportError``
/// (connection lost, cancelled, protocol error, drained before processing).
public final class ClientStream: Sendable {
    public let head: RequestHead
    public let inbound: InboundQueue<ClientInboundPart>
    public let outbound: any ClientStreamOutbound

    public init(head: RequestHead, inbound: InboundQueue<ClientInboundPart>, outbound: any ClientStreamOutbound) {
        self.head = head
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends a message (suspending while there is no credit).
    public func send(_ message: [UInt8]) async throws(TransportError) { try await outbound.send(message) }

    /// Ends the sending direction.
    public func finish() async throws(TransportError) { try await outbound.finish() }

    /// The next part from the server, or nil after its end was received.
    public func receive() async throws -> ClientInboundPart? { try await inbound.next() }

    /// Cancels the stream: the server is told, and a waiting ``receive()`` throws `cancelled`.
    public func cancel(reason: String = "cancelled by the client") {
        outbound.cancel(reason: reason)
        inbound.finish(throwing: TransportError(.cancelled, reason))
    }

    /// Reads the whole response of a stream whose sending side is finished: the head, the messages and the
    /// trailers. Intended for unary and server-streaming calls with small responses.
    public func collect() async throws -> (head: ResponseHead, messages: [[UInt8]], trailers: ResponseHead?) {
        var head: ResponseHead?
        var messages: [[UInt8]] = []
        while let part = try await receive() {
            switch part {
            case .head(let h): head = h
            case .message(let m): messages.append(m)
            case .end(let t): return (head ?? t ?? ResponseHead(), messages, t)
            }
        }
        throw TransportError(.protocolError, "stream ended without an end")
    }
}
