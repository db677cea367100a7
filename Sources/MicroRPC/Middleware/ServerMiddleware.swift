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
///
/// **Synchronous middleware.** A middleware that only acts before a unary handler (check, count, refuse) and after
/// it (record the outcome) can say so with ``handlesSynchronously`` and implement ``willHandle(_:context:)`` and
/// ``didHandle(_:context:outcome:)`` instead of ``intercept(_:context:next:)``. When every middleware of the chain
/// is synchronous, the server calls the hooks around the handler and no middleware adds an `async` level to the
/// call: each level costs a task frame and an executor check on return, and on a loop that a task prefers as its
/// executor that check takes the Swift runtime's status-record lock, which every loop shares. The stock rate
/// limiter and metrics are synchronous. Stream handlers and subscribers always go through the `async` methods.
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

    /// Whether the middleware does all its unary work in ``willHandle(_:context:)`` and
    /// ``didHandle(_:context:outcome:)`` (its ``intercept(_:context:next:)`` must then be the two around `next`,
    /// which is what the default does for a synchronous middleware). False by default. Not promised: that the
    /// hooks run inside the call's deadline scope (`CallScope.current`); the context carries the deadline.
    var handlesSynchronously: Bool { get }

    /// Before a unary handler: throw to refuse the call (``ServerRefusal``, ``RPCError``); the handler does not
    /// run, and ``didHandle(_:context:outcome:)`` is not called for this middleware. Only used when
    /// ``handlesSynchronously``.
    func willHandle(_ request: Request, context: RPCContext) throws

    /// After a unary handler (or an inner middleware's refusal) with its outcome, once for each call whose
    /// ``willHandle(_:context:)`` returned. Only used when ``handlesSynchronously``.
    func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>)
}

extension ServerMiddleware {
    /// Passes the call on; a synchronous middleware's hooks around it.
    @inlinable
    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        guard handlesSynchronously else { return try await next(request, context) }
        return try await withHooks(request, context: context, around: next)
    }

    /// ``willHandle(_:context:)``, `body`, ``didHandle(_:context:outcome:)`` with its outcome. Inlined into its
    /// caller, so that the hooks add no async level (the chains and the server's route use it).
    @inlinable @inline(__always)
    nonisolated(nonsending) func withHooks(
        _ request: Request, context: RPCContext, around body: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        try willHandle(request, context: context)
        let response: Response
        do {
            response = try await body(request, context)
        } catch {
            didHandle(request, context: context, outcome: .failure(error))
            throw error
        }
        didHandle(request, context: context, outcome: .success(response))
        return response
    }

    @inlinable
    public var handlesSynchronously: Bool { false }

    @inlinable
    public func willHandle(_ request: Request, context: RPCContext) throws {}

    @inlinable
    public func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {}

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
