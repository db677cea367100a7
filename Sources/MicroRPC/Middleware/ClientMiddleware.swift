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
///
/// **Synchronous middleware.** A middleware that only acts before and after (check, count, refuse) can say so
/// with ``callsSynchronously`` and implement the hooks ``willCall(_:)``, ``didCall(_:outcome:)``,
/// ``willAttempt(_:)`` and ``didAttempt(_:outcome:)`` (each a no-op by default) instead of the two `intercept`
/// methods. A chain then runs its hooks in place, with no `async` level of its own: each level costs a task frame
/// and an executor check on return, which on a task that prefers an event loop as its executor takes the Swift
/// runtime's status-record lock. The stock rate limiter and metrics are synchronous.
public protocol ClientMiddleware: Sendable {
    nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput

    nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput

    /// Whether the middleware does all its work in the hooks (its `intercept` methods must then be the hooks
    /// around `next`, which is what the defaults do for a synchronous middleware). False by default.
    var callsSynchronously: Bool { get }

    /// Before a logical call: throw (an ``RPCError``) to fail it; nothing is sent and ``didCall(_:outcome:)`` is
    /// not called for this middleware. Only used when ``callsSynchronously``.
    func willCall(_ call: ClientCall) throws

    /// After a logical call with its outcome, once for each call whose ``willCall(_:)`` returned.
    func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>)

    /// Before an attempt: throw to fail it (an ``RPCError`` with a ``CircuitOpenError`` cause: not sent, another
    /// node is tried). Only used when ``callsSynchronously``.
    func willAttempt(_ attempt: ClientAttempt) throws

    /// After an attempt with its outcome, once for each attempt whose ``willAttempt(_:)`` returned.
    func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>)
}

extension ClientMiddleware {
    /// Passes the call on; a synchronous middleware's hooks around it.
    @inlinable
    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        guard callsSynchronously else { return try await next(call) }
        return try await withCallHooks(call, around: next)
    }

    /// Passes the attempt on; a synchronous middleware's hooks around it.
    @inlinable
    public nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        guard callsSynchronously else { return try await next(attempt) }
        return try await withAttemptHooks(attempt, around: next)
    }

    /// ``willCall(_:)``, `body`, ``didCall(_:outcome:)`` with its outcome. Inlined into its caller, so that the
    /// hooks add no async level (the chains use it).
    @inlinable @inline(__always)
    nonisolated(nonsending) func withCallHooks(
        _ call: ClientCall, around body: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try willCall(call)
        let output: ClientOutput
        do {
            output = try await body(call)
        } catch {
            didCall(call, outcome: .failure(error))
            throw error
        }
        didCall(call, outcome: .success(output))
        return output
    }

    /// ``willAttempt(_:)``, `body`, ``didAttempt(_:outcome:)`` with its outcome, inlined like ``withCallHooks``.
    @inlinable @inline(__always)
    nonisolated(nonsending) func withAttemptHooks(
        _ attempt: ClientAttempt, around body: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        try willAttempt(attempt)
        let output: ClientOutput
        do {
            output = try await body(attempt)
        } catch {
            didAttempt(attempt, outcome: .failure(error))
            throw error
        }
        didAttempt(attempt, outcome: .success(output))
        return output
    }

    @inlinable
    public var callsSynchronously: Bool { false }

    @inlinable
    public func willCall(_ call: ClientCall) throws {}

    @inlinable
    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) {}

    @inlinable
    public func willAttempt(_ attempt: ClientAttempt) throws {}

    @inlinable
    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {}
}
