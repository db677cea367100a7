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

    /// Synchronous: a call is admitted or failed before anything is sent, with no async level.
    public var callsSynchronously: Bool { true }

    public func willCall(_ call: ClientCall) throws {
        guard admit(call.service, now: call.startedAt.nanoseconds) || admit(call.service, now: Timestamp.now.nanoseconds) else {
            let rate = configuration.services[call.service] ?? configuration.rate
            throw RPCError(.resourceExhausted, "client rate limit of \(rate) for service \(call.service) exceeded; not sent")
        }
    }

    /// Takes a token of `service`'s bucket. (A refusal is checked again with a fresh clock reading by the caller.)
    private func admit(_ service: String, now: Int64) -> Bool {
        if let limiter = own[service] { return limiter.tryAcquire(now: now) }
        return shared.tryAcquire(service, now: now)
    }
}
