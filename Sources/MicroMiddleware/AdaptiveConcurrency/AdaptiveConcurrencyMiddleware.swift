import MicroCore
public import MicroRPC

/// A server concurrency limit learned from observed latency (Netflix's concurrency-limits, Envoy's adaptive
/// concurrency): calls above the current limit are refused with a restartable NACK (RESOURCE_EXHAUSTED), so that
/// callers retry on another node instead of queueing here. The limit falls when latency rises above its long-term
/// level and grows back when it recovers (``AdaptiveLimiter``).
///
/// Calls count from their handler's start to its end; a call that ends with DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED
/// or UNAVAILABLE is a dropped sample. Health checks are not counted. Streams are counted for as long as they run
/// but give no latency sample (their length says nothing about load).
public struct AdaptiveConcurrencyMiddleware: ServerMiddleware {
    public let limiter: AdaptiveLimiter

    public init(_ configuration: AdaptiveConcurrencyConfiguration = AdaptiveConcurrencyConfiguration()) {
        limiter = AdaptiveLimiter(configuration)
    }

    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        if context.endpoint == Server.healthEndpoint { return try await next(request, context) }
        guard limiter.tryAcquire() else { throw refusal }
        let start = Timestamp.now
        do {
            let response = try await next(request, context)
            let end = Timestamp.now
            limiter.release(rttNanoseconds: start.nanoseconds(to: end), dropped: false, now: end.nanoseconds)
            return response
        } catch {
            let end = Timestamp.now
            let dropped = (error as? RPCError).map { [.deadlineExceeded, .resourceExhausted, .unavailable].contains($0.code) } ?? false
            limiter.release(rttNanoseconds: start.nanoseconds(to: end), dropped: dropped, now: end.nanoseconds)
            throw error
        }
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        guard limiter.tryAcquire() else { throw refusal }
        defer { limiter.releaseWithoutSample() }
        try await next(call)
    }

    private var refusal: ServerRefusal {
        ServerRefusal(.resourceExhausted, "adaptive concurrency limit of \(limiter.limit) calls reached; try another node")
    }
}
