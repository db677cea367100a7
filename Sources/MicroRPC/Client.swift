public import MicroCore
public import Logging
import Synchronization

/// Calls services: unary calls, bidirectional streams, and (through a broker) publishing.
///
/// A call names a service and an endpoint. The node is the call's `address` when given, else the selector's
/// pick among the service's nodes. The deadline is the earlier of the call's timeout and the deadline of the
/// handler the call is made from (``RPCContext``); the server gets the remaining budget. A failed call is retried
/// on another node only when its work certainly did not start (connect failure, restartable NACK, a draining
/// server) or the call is idempotent and its outcome unknown, with jittered backoff, within the deadline, and
/// only while the retry budget allows.
///
/// Thread-safe. Calls made from a task whose executor is the transport's loop for the address (see
/// `UVClientTransport.loop(for:)`) never change threads.
public final class Client: Sendable {
    public let transport: any ClientTransport
    public let selector: (any Selector)?
    public let configuration: ClientConfiguration
    public let retryBudget: RetryBudget
    /// Where the client logs retries, hedges and (through middleware) calls.
    public let logger: Logger

    public init(transport: any ClientTransport, selector: (any Selector)? = nil, configuration: ClientConfiguration = ClientConfiguration(),
                logger: Logger = Logger(label: "swift-micro.client")) {
        self.transport = transport
        self.selector = selector
        self.configuration = configuration
        self.logger = logger
        hasMiddleware = configuration.middleware != nil
        middleware = configuration.specializedMiddleware ?? configuration.middleware.map { SpecializedClientMiddleware($0) }
        retryBudget = RetryBudget(configuration.retryBudget)
        defaultTimeoutNanoseconds = Timestamp.nanoseconds(configuration.defaultTimeout)
    }

    private let defaultTimeoutNanoseconds: Int64
    /// Whether the configuration has middleware: tested per call instead of copying the optional existential out.
    let hasMiddleware: Bool
    /// The configuration's middleware, specialized for its type when ``ClientConfiguration/use(_:)`` set it
    /// (else its generic code behind the same closures).
    let middleware: SpecializedClientMiddleware?

    /// Recent attempt latencies by service and endpoint, for hedging delays. Guarded by its mutex.
    let latencies = Mutex<[LatencyKey: LatencyWindow]>([:])

    struct LatencyKey: Hashable, Sendable {
        var service: String
        var endpoint: String
    }

    /// The deadline of a call made at `now` with `timeout`: the earlier of it and the current handler's.
    func deadline(timeout: Duration?, now: Timestamp) -> Timestamp {
        let own = now.advanced(byNanoseconds: timeout.map(Timestamp.nanoseconds) ?? defaultTimeoutNanoseconds)
        if let inherited = CallScope.current?.deadline, inherited < own { return inherited }
        return own
    }

    /// A unary call with raw bytes. Throws ``RPCError`` for every failed outcome, ``RPCUsageError`` when neither
    /// an address nor a selector says where to send it.
    public nonisolated(nonsending) func call(_ request: Request, options: CallOptions = CallOptions()) async throws -> Response {
        if options.idempotent, options.address == nil, selector != nil, let policy = options.hedging ?? configuration.hedging {
            return try await executeHedged(request, options: options, policy: policy)
        }
        return try await execute(service: request.service, endpoint: request.endpoint, contentType: request.contentType,
                          metadata: request.metadata, options: options, kind: .unary, context: request) { request, address, head, deadline in
            await UnaryAttempt.run(self.transport, request.body, to: address, head: head, deadline: deadline)
        }
    }

    /// The budget sent to the server, from nanoseconds: at least 1 µs.
    static func microseconds(nanoseconds: Int64) -> UInt64 { nanoseconds < 1000 ? 1 : UInt64(nanoseconds / 1000) }
}
