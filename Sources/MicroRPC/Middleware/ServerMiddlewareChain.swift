public import MicroCore

/// Two server middlewares as one: `first` outside, `second` inside. Generic, so that a chain of any length is one
/// concrete type: a hop costs a direct (witness) call and a non-escaping closure, no existential and no
/// allocation.
public struct ServerMiddlewareChain<First: ServerMiddleware, Second: ServerMiddleware>: ServerMiddleware {
    public let first: First
    public let second: Second

    @inlinable
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    @inlinable
    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        if first.handlesSynchronously {
            // No closure level for a synchronous first: its hooks around the second.
            return try await first.withHooks(request, context: context) { request, context in
                try await second.intercept(request, context: context, next: next)
            }
        }
        if second.handlesSynchronously {
            // Nor a level for a synchronous second: its hooks inside the first's closure.
            return try await first.intercept(request, context: context) { request, context in
                try await second.withHooks(request, context: context, around: next)
            }
        }
        return try await first.intercept(request, context: context) { request, context in
            try await second.intercept(request, context: context, next: next)
        }
    }

    @inlinable
    public var handlesSynchronously: Bool { first.handlesSynchronously && second.handlesSynchronously }

    /// The first's, then the second's; when the second refuses, the first sees the refusal as the outcome.
    @inlinable
    public func willHandle(_ request: Request, context: RPCContext) throws {
        try first.willHandle(request, context: context)
        do {
            try second.willHandle(request, context: context)
        } catch {
            first.didHandle(request, context: context, outcome: .failure(error))
            throw error
        }
    }

    /// The second's, then the first's (the reverse order: the first is outermost).
    @inlinable
    public func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        second.didHandle(request, context: context, outcome: outcome)
        first.didHandle(request, context: context, outcome: outcome)
    }

    @inlinable
    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        try await first.interceptStream(call) { call in try await second.interceptStream(call, next: next) }
    }

    @inlinable
    public nonisolated(nonsending) func interceptMessage(
        _ message: BrokerMessage, topic: String, next: nonisolated(nonsending) (BrokerMessage) async throws -> Void
    ) async throws {
        try await first.interceptMessage(message, topic: topic) { message in
            try await second.interceptMessage(message, topic: topic, next: next)
        }
    }
}

/// The middleware that does nothing: the chain of no middleware.
public struct PassThroughServerMiddleware: ServerMiddleware {
    @inlinable
    public init() {}
}

/// Builds a ``ServerMiddlewareChain`` from a list: the first listed is the outermost.
@resultBuilder
public enum ServerMiddlewareBuilder {
    public static func buildPartialBlock<M: ServerMiddleware>(first: M) -> M { first }

    public static func buildPartialBlock<M0: ServerMiddleware, M1: ServerMiddleware>(
        accumulated: M0, next: M1
    ) -> ServerMiddlewareChain<M0, M1> {
        ServerMiddlewareChain(accumulated, next)
    }

    public static func buildBlock() -> PassThroughServerMiddleware { PassThroughServerMiddleware() }
}

/// A middleware of a type known only at run time (what ``ServerConfiguration/use(_:)`` chains onto).
public struct AnyServerMiddleware: ServerMiddleware {
    public let base: any ServerMiddleware

    public init(_ base: any ServerMiddleware) { self.base = base }

    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        try await base.intercept(request, context: context, next: next)
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        try await base.interceptStream(call, next: next)
    }

    public nonisolated(nonsending) func interceptMessage(
        _ message: BrokerMessage, topic: String, next: nonisolated(nonsending) (BrokerMessage) async throws -> Void
    ) async throws {
        try await base.interceptMessage(message, topic: topic, next: next)
    }

    public var handlesSynchronously: Bool { base.handlesSynchronously }

    public func willHandle(_ request: Request, context: RPCContext) throws {
        try base.willHandle(request, context: context)
    }

    public func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        base.didHandle(request, context: context, outcome: outcome)
    }
}
