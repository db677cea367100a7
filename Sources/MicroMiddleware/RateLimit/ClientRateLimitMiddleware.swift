import MicroCore
public import MicroRPC

/// A token bucket per service on the client (around each logical call): a call over the rate fails at once with
/// RESOURCE_EXHAUSTED, nothing sent, and is not retried by the client.
///
/// Thread-safe; one lock per call (the buckets' table). Not promised: buckets of services beyond `maxServices`
/// keep their state (see ``KeyedRateLimiter``).
public struct ClientRateLimitMiddleware: ClientMiddleware {
    public struct Configuration: Sendable {
        /// The rate of each service without its own.
        public var rate: Rate
        /// Rates of given services.
        public var services: [String: Rate] = [:]
        public var maxServices = 10_000

        public init(rate: Rate) { self.rate = rate }
    }

    public let configuration: Configuration
    private let shared: KeyedRateLimiter
    private let own: [String: RateLimiter]

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        shared = KeyedRateLimiter(ratePerSecond: configuration.rate.perSecond, burst: configuration.rate.burst,
                                  maxKeys: configuration.maxServices)
        own = configuration.services.mapValues { RateLimiter(ratePerSecond: $0.perSecond, burst: $0.burst) }
    }

    public init(rate: Rate) { self.init(Configuration(rate: rate)) }

    public nonisolated(nonsending) func intercept<Output>(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> Output
    ) async throws -> Output {
        let now = call.startedAt.nanoseconds
        let admitted = if let limiter = own[call.service] { limiter.tryAcquire(now: now) } else { shared.tryAcquire(call.service, now: now) }
        guard admitted else {
            let rate = configuration.services[call.service] ?? configuration.rate
            throw RPCError(.resourceExhausted, "client rate limit of \(rate) for service \(call.service) exceeded; not sent")
        }
        return try await next(call)
    }
}
