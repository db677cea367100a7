public import MicroCore

/// Code around a ``Server``'s handlers (gRPC's server interceptor, go-micro's handler wrapper): unary handlers
/// (``intercept(_:context:next:)``), stream handlers (``interceptStream(_:next:)``) and broker subscribers
/// (``interceptMessage(_:topic:next:)``). Each has a pass-through default: implement what you need.
///
/// A middleware may change the request or the context before handing them on (an auth middleware sets
/// ``RPCContext/identity``), answer without calling `next` (a limiter), or look at the outcome. To refuse a call
/// so that the caller may retry it elsewhere, throw ``ServerRefusal``; any ``RPCError`` becomes the call's status,
/// another error `internalError`.
///
/// A chain (``ServerMiddlewareChain``, built with ``ServerConfiguration/use(_:)``) runs the first middleware
/// outermost. It runs inside the server's own checks (concurrency limit, expired deadline, unknown content type),
/// on the connection's event loop (`nonisolated(nonsending)`): do not block.
public protocol ServerMiddleware: Sendable {
    nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response

    nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws

    /// Around a subscriber's handling of one broker message (``Server/subscribe(topic:queue:handler:)``).
    nonisolated(nonsending) func interceptMessage(
        _ message: BrokerMessage, topic: String, next: nonisolated(nonsending) (BrokerMessage) async throws -> Void
    ) async throws
}

extension ServerMiddleware {
    @inlinable
    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        try await next(request, context)
    }

    @inlinable
    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        try await next(call)
    }

    @inlinable
    public nonisolated(nonsending) func interceptMessage(
        _ message: BrokerMessage, topic: String, next: nonisolated(nonsending) (BrokerMessage) async throws -> Void
    ) async throws {
        try await next(message)
    }
}
