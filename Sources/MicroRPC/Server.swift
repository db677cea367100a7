import Foundation
public import MicroCore
public import Logging
import Synchronization

/// Serves a service's endpoints over a transport, and announces it in a registry.
///
/// Register handlers, then ``start()``: the server listens, registers its node with a TTL and renews it at an
/// interval (a crashed node expires). ``shutdown()`` (or SIGTERM/SIGINT when run in a `ServiceGroup`, see
/// `run()`) deregisters, answers health checks NOT_SERVING, sends DRAIN on every connection, lets in-flight
/// calls finish for the grace period, then closes.
///
/// Unary handlers run on the connection's event loop as part of a reused task: a call that does not suspend
/// costs no task and no thread hop. Above ``ServerConfiguration/maxConcurrentCalls`` new calls get a restartable
/// NACK, so that clients retry on another node.
///
/// Every server answers `Health.Check` with `{"status":"SERVING"}` (or `NOT_SERVING` while stopping).
public final class Server: ServerHandler, Sendable {
    public static let healthEndpoint = "Health.Check"

    public let configuration: ServerConfiguration
    public let transport: any ServerTransport
    public let registry: (any Registry)?
    public let logger: Logger
    /// This node's id in the registry.
    public let nodeID: String
    let core: ServerCore
    /// Service and endpoint to route; the only place requests are matched to handlers.
    let router: Router
    /// Keeps the node registered while serving (nil without a registry).
    let registration: Registration?

    private struct Lifecycle: ~Copyable {
        var started = false
        var stopped = false
        /// Broker subscriptions made through the server, ended when it stops.
        var subscriptions: [Subscription] = []
    }
    private let lifecycle = Mutex(Lifecycle())

    public init(configuration: ServerConfiguration, transport: any ServerTransport, registry: (any Registry)? = nil,
                logger: Logger = Logger(label: "swift-micro.server")) {
        self.configuration = configuration
        self.transport = transport
        self.registry = registry
        self.logger = logger
        nodeID = "\(configuration.name)-\(UUID().uuidString.lowercased())"
        let core = ServerCore(configuration: configuration)
        self.core = core
        let health = Route(endpoint: Self.healthEndpoint, kind: .unary({ _, _ in
            Response(body: Array((core.draining.load(ordering: .relaxed) ? #"{"status":"NOT_SERVING"}"# : #"{"status":"SERVING"}"#).utf8))
        }), server: core, counted: false)
        router = Router(core: core, health: health)
        registration = registry.map {
            Registration(registry: $0, ttl: configuration.registerTTL, interval: configuration.registerInterval, logger: logger)
        }
    }

    // MARK: handlers

    /// Serves `endpoint` (e.g. `Greeter.Hello`) with a unary handler of raw requests. Register handlers before
    /// ``start()``: one added later is served too, but replacing one that `start()` saw has no effect.
    public func handle(_ endpoint: String, _ body: @escaping UnaryRequestHandler) {
        add(Route(endpoint: endpoint, kind: .unary(body), server: core))
    }

    /// Serves `endpoint` with a typed unary handler: the request is decoded with the codec of its content type,
    /// the response encoded with the same codec.
    public func handle<Req, Res>(
        _ endpoint: String,
        _ requestType: Req.Type = Req.self,
        _ body: @escaping TypedUnaryHandler<Req, Res>
    ) {
        let codecs = configuration.codecs
        handle(endpoint) { request, context in
            guard let codec = codecs.codec(for: request.contentType) else { throw codecs.unsupported(request.contentType) }
            let value = try codec.decode(Req.self, from: request.body)
            let result = try await body(value, context)
            return Response(body: try codec.encode(result))
        }
    }

    /// Serves `endpoint` as a bidirectional stream.
    public func handleStream(_ endpoint: String, _ body: @escaping StreamRequestHandler) {
        add(Route(endpoint: endpoint, kind: .stream(body), server: core))
    }

    private func add(_ route: Route) { router.add(route) }

    // MARK: ServerHandler

    /// The path of every request: transport -> router -> route. A unary route counts itself in and out of the
    /// concurrency limit when it runs; a stream is counted here.
    public func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? {
        let route = router.route(head)
        return route.isStream ? nil : route
    }

    public func handleStream(_ stream: ServerStream) async {
        let route = router.route(stream.head)
        switch route.kind {
        case .stream(let body):
            let admitted = await core.admission.run { await Self.runStream(body, stream, core: core) }
            // Refused before reading anything: the client may retry elsewhere at once.
            if !admitted { try? await stream.finish(ResponseHead(status: core.overloadStatus)) }
        case .unary:
            await route.serveAsStream(stream)  // unary routes answer (and count) themselves
        case .unknownEndpoint, .wrongService:
            // Answered at once, without waiting for the request's messages.
            try? await stream.finish(ResponseHead(status: route.refusalStatus(stream.head)))
        }
    }

    static func runStream(_ body: StreamRequestHandler, _ stream: ServerStream, core: ServerCore) async {
        let head = stream.head
        guard let codec = core.configuration.codecs.codec(for: head.contentType) else {
            try? await stream.finish(ResponseHead(status: core.configuration.codecs.unsupported(head.contentType).status))
            return
        }
        let receivedAt = Timestamp.now
        let deadline = RPCContext.deadline(of: head, receivedAt: receivedAt)
        let context = RPCContext(service: head.service, endpoint: head.endpoint, deadline: deadline,
                                 metadata: head.metadata, peer: stream.peer, attempt: head.attempt,
                                 peerCertificateSubject: stream.peerCertificateSubject, receivedAt: receivedAt)
        let call = ServerCallStream(stream: stream, context: context, codec: codec)
        let middleware = core.middleware
        do {
            try await CallScope.$current.withValue(CallScope(deadline: deadline)) {
                if let middleware { try await middleware.interceptStream(call, next: body) } else { try await body(call) }
            }
            try? await stream.finish(ResponseHead())
        } catch let e as RPCError {
            try? await stream.finish(ResponseHead(status: e.status, metadata: e.metadata))
        } catch let refusal as ServerRefusal {
            try? await stream.finish(ResponseHead(status: refusal.status))
        } catch {
            try? await stream.finish(ResponseHead(status: .error(.internalError, "\(error)")))
        }
    }

    // MARK: lifecycle

    /// Whether the server serves (false once a graceful stop began): what `Health.Check` reports.
    public var isServing: Bool { !core.draining.load(ordering: .relaxed) }

    /// Calls being handled now.
    public var inFlightCalls: Int { core.admission.inFlight }
    /// Calls refused (NACK) because of the concurrency limit, since the start.
    public var refusedCalls: Int { core.admission.refused }

    /// The registry record of this node (with the transport's address once serving).
    public var serviceRecord: Service {
        let address = configuration.advertiseAddress ?? transport.boundAddress ?? ""
        let endpoints = router.endpoints.map { Endpoint(name: $0) }
        return Service(name: configuration.name, version: configuration.version, metadata: configuration.metadata,
                       endpoints: endpoints + [Endpoint(name: Self.healthEndpoint)],
                       nodes: [Node(id: nodeID, address: address, metadata: configuration.nodeMetadata)])
    }

    /// Starts serving and registers the node (with its TTL, renewed every interval).
    public func start() async throws {
        let first = lifecycle.withLock { l -> Bool in
            if l.started || l.stopped { return false }
            l.started = true
            return true
        }
        guard first else { throw RPCUsageError("server \(configuration.name) was already started or stopped") }
        router.freeze()
        try await transport.serve(self)
        guard let registration else { return }
        let record = serviceRecord
        // False: shutdown() closed the registration meanwhile, and the record was taken back.
        guard try await registration.add(nodeID, record) else { return }
        logger.info("serving", metadata: ["service": "\(record.name)", "node": "\(nodeID)", "address": "\(record.nodes[0].address)"])
    }

    func remember(_ subscription: Subscription) {
        lifecycle.withLock { $0.subscriptions.append(subscription) }
    }

    /// Graceful stop: deregister, health NOT_SERVING, DRAIN every connection, in-flight calls finish within the
    /// grace period (the configuration's unless given), then close. Idempotent.
    public func shutdown(gracePeriod: Duration? = nil) async {
        let (first, subscriptions) = lifecycle.withLock { l -> (Bool, [Subscription]) in
            if l.stopped { return (false, []) }
            l.stopped = true
            defer { l.subscriptions = [] }
            return (true, l.subscriptions)
        }
        guard first else { return }
        for subscription in subscriptions { await subscription.unsubscribe() }
        core.draining.store(true, ordering: .relaxed)
        // Waits for a renewal under way, so the node is never written back after it was deregistered.
        await registration?.close()
        await transport.drain(gracePeriod: gracePeriod ?? configuration.gracePeriod)
    }
}
