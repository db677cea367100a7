/// The synchronous hooks of a server's middleware (``ServerMiddleware/willHandle(_:context:)`` and
/// ``ServerMiddleware/didHandle(_:context:outcome:)``) as two closures over the middleware, stored by its
/// concrete type so that a call borrows it in place (a call through the stored existential copied the whole chain
/// out first: a retain and a release for every reference the chain holds, twice per call).
///
/// Made where the chain's type is known: ``ServerConfiguration/use(_:)`` is inlined into the module that lists
/// the chain, so the closures run code specialized for it, each hop a direct call. Made from the existential (a
/// `middleware` set directly), they run the chain's generic code: a witness-table call per hop and the generic
/// types' metadata looked up at run time, per call. Immutable.
@usableFromInline
final class ServerHooks: Sendable {
    @usableFromInline let willHandleHook: @Sendable (Request, RPCContext) throws -> Void
    @usableFromInline let didHandleHook: @Sendable (Request, RPCContext, Result<Response, any Error>) -> Void

    @inlinable
    init<Middleware: ServerMiddleware>(_ middleware: Middleware) {
        willHandleHook = { request, context in try middleware.willHandle(request, context: context) }
        didHandleHook = { request, context, outcome in middleware.didHandle(request, context: context, outcome: outcome) }
    }

    @inline(__always)
    func willHandle(_ request: Request, context: RPCContext) throws {
        try willHandleHook(request, context)
    }

    @inline(__always)
    func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        didHandleHook(request, context, outcome)
    }
}
