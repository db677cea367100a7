/// Code around the calls a ``Client`` makes (gRPC's client interceptor, go-micro's client wrapper, Finagle's
/// filter), at two levels:
///
/// - ``intercept(_:next:)`` once around each **logical call**: all its attempts, backoffs, retries and hedges.
///   A log line or a logical-call metric belongs here.
/// - ``interceptAttempt(_:next:)`` around each **attempt** on one node. A circuit breaker, an attempt metric or
///   an auth header belongs here.
///
/// Both have pass-through defaults: implement what you need. A chain (``ClientMiddlewareChain``, built with
/// ``ClientConfiguration/use(_:)``) runs the first middleware outermost: it sees the call first and its result
/// last. Errors should be ``RPCError``: another error thrown by an attempt middleware is reported as `unknown`.
///
/// Both run on the caller's executor (`nonisolated(nonsending)`), so a middleware that does not suspend costs no
/// thread hop. Not promised: that an attempt middleware runs on the task of the logical call (a hedge runs in a
/// child task).
public protocol ClientMiddleware: Sendable {
    nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput

    nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput
}

extension ClientMiddleware {
    @inlinable
    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try await next(call)
    }

    @inlinable
    public nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try await next(attempt)
    }
}
