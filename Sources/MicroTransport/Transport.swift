public import MicroFraming

/// The client side of a transport: opens streams to addresses. What an RPC system embeds as its transport
/// plugin. Implementations: `UVClientTransport` (libuv, pooled, multiplexed) and ``InMemoryTransport``.
public protocol ClientTransport: Sendable {
    /// Opens a stream to `address` by sending `head`, with `firstMessage` in the same frame when given;
    /// `endOfInput` ends the client's direction at once (unary and server-streaming calls).
    ///
    /// `deadline` bounds the wait for a connection or a free stream slot, not the call itself.
    func openStream(
        to address: String,
        head: RequestHead,
        firstMessage: [UInt8]?,
        endOfInput: Bool,
        deadline: ContinuousClock.Instant?
    ) async throws(TransportError) -> ClientStream

    /// Closes every connection; open streams end with `shutdown`.
    func shutdown() async
}

extension ClientTransport {
    /// A unary exchange: one request message, one response.
    public func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: ContinuousClock.Instant? = nil
    ) async throws -> UnaryResponse {
        let stream = try await openStream(to: address, head: head, firstMessage: message, endOfInput: true, deadline: deadline)
        let (h, messages, trailers) = try await stream.collect()
        return UnaryResponse(head: h, message: messages.first, trailers: trailers)
    }
}

/// The server side of a transport: accepts streams and hands each to a handler.
public protocol ServerTransport: Sendable {
    /// Starts accepting streams; returns once the server is listening. Each stream runs `handler` in a task of
    /// its own.
    func serve(_ handler: @escaping @Sendable (ServerStream) async -> Void) async throws

    /// Graceful stop: accept no new streams (peers are told to go elsewhere), let open streams finish for up
    /// to `gracePeriod`, cancel what is left, then close everything.
    func drain(gracePeriod: Duration) async
}
