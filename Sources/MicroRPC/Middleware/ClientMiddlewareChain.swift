/// Two client middlewares as one: `first` outside, `second` inside. Generic, so that a chain of any length is one
/// concrete type: a hop costs a direct (witness) call and a non-escaping closure, no existential and no
/// allocation.
public struct ClientMiddlewareChain<First: ClientMiddleware, Second: ClientMiddleware>: ClientMiddleware {
    public let first: First
    public let second: Second

    @inlinable
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }

    @inlinable @inline(__always)
    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        if first.callsSynchronously {
            // No closure level for a synchronous first: its hooks around the second.
            return try await first.withCallHooks(call) { call in try await second.intercept(call, next: next) }
        }
        if second.callsSynchronously {
            // Nor a level for a synchronous second: its hooks inside the first's closure.
            return try await first.intercept(call) { call in try await second.withCallHooks(call, around: next) }
        }
        return try await first.intercept(call) { call in try await second.intercept(call, next: next) }
    }

    @inlinable @inline(__always)
    public nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        if first.callsSynchronously {
            return try await first.withAttemptHooks(attempt) { attempt in try await second.interceptAttempt(attempt, next: next) }
        }
        if second.callsSynchronously {
            return try await first.interceptAttempt(attempt) { attempt in try await second.withAttemptHooks(attempt, around: next) }
        }
        return try await first.interceptAttempt(attempt) { attempt in try await second.interceptAttempt(attempt, next: next) }
    }

    @inlinable
    public var callsSynchronously: Bool { first.callsSynchronously && second.callsSynchronously }

    /// The first's, then the second's; when the second fails the call, the first sees that as the outcome.
    @inlinable
    public func willCall(_ call: ClientCall) throws {
        try first.willCall(call)
        do {
            try second.willCall(call)
        } catch {
            first.didCall(call, outcome: .failure(error))
            throw error
        }
    }

    /// The second's, then the first's.
    @inlinable
    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) {
        second.didCall(call, outcome: outcome)
        first.didCall(call, outcome: outcome)
    }

    @inlinable
    public func willAttempt(_ attempt: ClientAttempt) throws {
        try first.willAttempt(attempt)
        do {
            try second.willAttempt(attempt)
        } catch {
            first.didAttempt(attempt, outcome: .failure(error))
            throw error
        }
    }

    @inlinable
    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        second.didAttempt(attempt, outcome: outcome)
        first.didAttempt(attempt, outcome: outcome)
    }
}

/// The middleware that does nothing: the chain of no middleware.
public struct PassThroughClientMiddleware: ClientMiddleware {
    @inlinable
    public init() {}
}

/// Builds a ``ClientMiddlewareChain`` from a list: the first listed is the outermost.
@resultBuilder
public enum ClientMiddlewareBuilder {
    public static func buildPartialBlock<M: ClientMiddleware>(first: M) -> M { first }

    public static func buildPartialBlock<M0: ClientMiddleware, M1: ClientMiddleware>(
        accumulated: M0, next: M1
    ) -> ClientMiddlewareChain<M0, M1> {
        ClientMiddlewareChain(accumulated, next)
    }

    public static func buildOptional<M: ClientMiddleware>(_ component: M?) -> OptionalClientMiddleware<M> {
        OptionalClientMiddleware(component)
    }

    public static func buildBlock() -> PassThroughClientMiddleware { PassThroughClientMiddleware() }
}

/// A middleware that may be absent (`if` in a ``ClientMiddlewareBuilder``).
public struct OptionalClientMiddleware<Wrapped: ClientMiddleware>: ClientMiddleware {
    public let wrapped: Wrapped?

    public init(_ wrapped: Wrapped?) { self.wrapped = wrapped }

    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        guard let wrapped else { return try await next(call) }
        return try await wrapped.intercept(call, next: next)
    }

    public nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        guard let wrapped else { return try await next(attempt) }
        return try await wrapped.interceptAttempt(attempt, next: next)
    }

    /// An absent middleware does nothing, synchronously.
    public var callsSynchronously: Bool { wrapped?.callsSynchronously ?? true }

    public func willCall(_ call: ClientCall) throws { try wrapped?.willCall(call) }

    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) { wrapped?.didCall(call, outcome: outcome) }

    public func willAttempt(_ attempt: ClientAttempt) throws { try wrapped?.willAttempt(attempt) }

    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        wrapped?.didAttempt(attempt, outcome: outcome)
    }
}

/// A middleware of a type known only at run time (what ``ClientConfiguration/use(_:)`` chains onto).
public struct AnyClientMiddleware: ClientMiddleware {
    public let base: any ClientMiddleware

    public init(_ base: any ClientMiddleware) { self.base = base }

    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try await base.intercept(call, next: next)
    }

    public nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try await base.interceptAttempt(attempt, next: next)
    }

    public var callsSynchronously: Bool { base.callsSynchronously }

    public func willCall(_ call: ClientCall) throws { try base.willCall(call) }

    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) { base.didCall(call, outcome: outcome) }

    public func willAttempt(_ attempt: ClientAttempt) throws { try base.willAttempt(attempt) }

    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        base.didAttempt(attempt, outcome: outcome)
    }
}
