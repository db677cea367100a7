import MicroCore
public import MicroRPC

/// Token buckets on the server: per endpoint and per caller. A call over either rate is refused before its
/// handler runs with a restartable NACK (RESOURCE_EXHAUSTED), so that the caller's client retries it on another
/// node at once.
///
/// The caller is its authenticated identity (``RPCContext/identity``, so put this after the auth middleware) or
/// else its address without the port. Health checks are never limited.
///
/// Thread-safe; an endpoint's bucket is one atomic, found without a lock when the call names the endpoint the
/// previous call named; the per-caller table takes a lock. Not promised: exact accounting for callers beyond
/// `maxCallers` (see ``KeyedRateLimiter``).
public struct ServerRateLimitMiddleware: ServerMiddleware {
    public struct Configuration: Sendable {
        /// The rate of each endpoint without its own; nil: endpoints are not limited.
        public var endpoint: Rate? = nil
        /// Rates of given endpoints ("Greeter.Hello").
        public var endpoints: [String: Rate] = [:]
        /// The rate of each caller; nil: callers are not limited.
        public var caller: Rate? = nil
        public var maxCallers = 10_000

        public init(endpoint: Rate? = nil, caller: Rate? = nil) {
            self.endpoint = endpoint
            self.caller = caller
        }
    }

    /// The bucket of one endpoint and its rate (nil: the endpoint is not limited), and whether the endpoint is
    /// the health check's, which is limited neither per endpoint nor per caller. Decided once per endpoint, so a
    /// call compares no names.
    final class EndpointLimit: Sendable {
        let limiter: RateLimiter
        let rate: Rate?
        let isHealth: Bool

        init(_ rate: Rate?, isHealth: Bool) {
            self.rate = isHealth ? nil : rate
            self.isHealth = isHealth
            // An unlimited endpoint keeps a bucket it never consults: a stored reference that is never nil is
            // read without a retain.
            let r = self.rate ?? Rate(perSecond: 1, burst: 1)
            limiter = RateLimiter(ratePerSecond: r.perSecond, burst: r.burst)
        }
    }

    public let configuration: Configuration
    /// The bucket of each endpoint, made on its first call (at full burst). Keyed by endpoint name alone: the
    /// keys are the endpoints the server serves (a call to another endpoint is answered before any middleware).
    private let perEndpoint: EndpointTable<EndpointLimit>
    private let perCaller: KeyedRateLimiter?

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        perEndpoint = EndpointTable { _, endpoint in
            EndpointLimit(configuration.endpoints[endpoint] ?? configuration.endpoint, isHealth: endpoint == Server.healthEndpoint)
        }
        perCaller = configuration.caller.map {
            KeyedRateLimiter(ratePerSecond: $0.perSecond, burst: $0.burst, maxKeys: configuration.maxCallers)
        }
    }

    /// Synchronous: unary calls are admitted or refused before their handler, with no async level.
    public var handlesSynchronously: Bool { true }

    public func willHandle(_ request: Request, context: RPCContext) throws {
        try admit(context)
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        try admit(call.context)
        try await next(call)
    }

    /// Throws the refusal when a bucket is empty; the endpoint's first, so a caller refused by it spends nothing.
    func admit(_ context: RPCContext) throws(ServerRefusal) {
        // The first try uses the arrival time (no clock read); a refusal is decided on a fresh clock reading.
        let arrived = context.receivedAt.nanoseconds
        let verdict: Verdict = perEndpoint.withValue("", context.endpoint) { limit in
            if limit.isHealth { return .exempt }
            guard let rate = limit.rate else { return .admitted }
            let limiter = limit.limiter
            return limiter.tryAcquire(now: arrived) || limiter.tryAcquire(now: Timestamp.now.nanoseconds) ? .admitted : .refused(rate)
        }
        switch verdict {
        case .exempt: return
        case .refused(let rate): throw refusal("endpoint \(context.endpoint)", rate)
        case .admitted: break
        }
        if let perCaller, let rate = configuration.caller {
            let caller = Self.caller(context)
            guard perCaller.tryAcquire(caller, now: arrived) || perCaller.tryAcquire(caller, now: Timestamp.now.nanoseconds) else {
                throw refusal("caller \(caller)", rate)
            }
        }
    }

    private enum Verdict {
        case exempt, admitted
        case refused(Rate)
    }

    private func refusal(_ what: String, _ rate: Rate) -> ServerRefusal {
        ServerRefusal(.resourceExhausted, "rate limit of \(rate) for \(what) exceeded; try another node")
    }

    /// The caller's key: its identity, else its host.
    static func caller(_ context: RPCContext) -> String {
        if let identity = context.identity { return identity.name }
        let peer = context.peer
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        return String(peer[..<colon])
    }
}
