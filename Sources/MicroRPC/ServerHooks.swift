/// The synchronous hooks of a server's middleware (``ServerMiddleware/willHandle(_:context:)`` and
/// ``ServerMiddleware/didHandle(_:context:outcome:)``), with the middleware stored by its concrete type, so that a
/// call borrows it in place. A call through the stored existential copied the whole chain out first: a retain and a
/// release for every reference the chain holds, twice per call.
class ServerHooks: @unchecked Sendable {
    func willHandle(_ request: Request, context: RPCContext) throws {}
    func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {}
}

/// ``ServerHooks`` of one middleware type. Immutable.
final class TypedServerHooks<Middleware: ServerMiddleware>: ServerHooks, @unchecked Sendable {
    let middleware: Middleware

    init(_ middleware: Middleware) { self.middleware = middleware }

    override func willHandle(_ request: Request, context: RPCContext) throws {
        try middleware.willHandle(request, context: context)
    }

    override func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        middleware.didHandle(request, context: context, outcome: outcome)
    }
}
