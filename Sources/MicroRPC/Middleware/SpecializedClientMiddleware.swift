/// A client middleware chain behind closures made where the chain's type is known: ``ClientConfiguration/use(_:)``
/// is inlined into the module that lists the chain, so each closure runs code specialized for it.
///
/// Why: a chain stored as `any ClientMiddleware` is a generic type (``ClientMiddlewareChain``), and a call through
/// its witness table runs the unspecialized generic code: a witness call per hop, opaque copies of the parts, and
/// generic metadata looked up at run time (4 lookups per call for the stock chain, counted). Through this wrapper
/// a call costs one closure call. The client holds every chain this way (one set by `middleware` directly runs its
/// generic code behind the same closures) and calls it by this concrete type, so the forwarding methods inline:
/// no async level of their own. Immutable.
@usableFromInline
final class SpecializedClientMiddleware: ClientMiddleware {
    @usableFromInline typealias CallNext = nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    @usableFromInline typealias AttemptNext = nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    @usableFromInline typealias InterceptHook = nonisolated(nonsending) @Sendable (ClientCall, CallNext) async throws -> ClientOutput
    @usableFromInline typealias InterceptAttemptHook =
        nonisolated(nonsending) @Sendable (ClientAttempt, AttemptNext) async throws -> ClientOutput

    let interceptHook: InterceptHook
    let interceptAttemptHook: InterceptAttemptHook
    let willCallHook: @Sendable (ClientCall) throws -> Void
    let didCallHook: @Sendable (ClientCall, Result<ClientOutput, any Error>) -> Void
    let willAttemptHook: @Sendable (ClientAttempt) throws -> Void
    let didAttemptHook: @Sendable (ClientAttempt, Result<ClientOutput, any Error>) -> Void
    @usableFromInline let callsSynchronously: Bool

    @inlinable
    convenience init<Middleware: ClientMiddleware>(_ middleware: Middleware) {
        self.init(
            intercept: { call, next in try await middleware.intercept(call, next: next) },
            interceptAttempt: { attempt, next in try await middleware.interceptAttempt(attempt, next: next) },
            willCall: { call in try middleware.willCall(call) },
            didCall: { call, outcome in middleware.didCall(call, outcome: outcome) },
            willAttempt: { attempt in try middleware.willAttempt(attempt) },
            didAttempt: { attempt, outcome in middleware.didAttempt(attempt, outcome: outcome) },
            callsSynchronously: middleware.callsSynchronously)
    }

    @usableFromInline
    init(intercept: @escaping InterceptHook,
         interceptAttempt: @escaping InterceptAttemptHook,
         willCall: @escaping @Sendable (ClientCall) throws -> Void,
         didCall: @escaping @Sendable (ClientCall, Result<ClientOutput, any Error>) -> Void,
         willAttempt: @escaping @Sendable (ClientAttempt) throws -> Void,
         didAttempt: @escaping @Sendable (ClientAttempt, Result<ClientOutput, any Error>) -> Void,
         callsSynchronously: Bool) {
        interceptHook = intercept
        interceptAttemptHook = interceptAttempt
        willCallHook = willCall
        didCallHook = didCall
        willAttemptHook = willAttempt
        didAttemptHook = didAttempt
        self.callsSynchronously = callsSynchronously
    }

    @inline(__always) @usableFromInline nonisolated(nonsending) func intercept(_ call: ClientCall, next: CallNext) async throws -> ClientOutput {
        try await interceptHook(call, next)
    }

    @inline(__always) @usableFromInline nonisolated(nonsending) func interceptAttempt(_ attempt: ClientAttempt, next: AttemptNext) async throws -> ClientOutput {
        try await interceptAttemptHook(attempt, next)
    }

    @inline(__always) @usableFromInline func willCall(_ call: ClientCall) throws { try willCallHook(call) }

    @inline(__always) @usableFromInline func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) { didCallHook(call, outcome) }

    @inline(__always) @usableFromInline func willAttempt(_ attempt: ClientAttempt) throws { try willAttemptHook(attempt) }

    @inline(__always) @usableFromInline func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) { didAttemptHook(attempt, outcome) }
}
