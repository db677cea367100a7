public import MicroCore
internal import Logging
public import MicroEventLoop
public import MicroTLS
import Synchronization

/// The server side of the libuv transport: listens on every loop of the group (`SO_REUSEPORT`), speaks the
/// multiplexed protocol on each accepted connection, and runs each stream's handler as a task on the
/// connection's own loop (the loop is the task's executor), so a call never changes threads.
public final class UVServerTransport: ServerTransport {
    public let group: EventLoopGroup
    public let configuration: UVTransportConfiguration
    private let requestedAddress: SocketAddress
    private let listener = Mutex<TCPListener?>(nil)
    /// Set (under `listener`'s lock) once a drain began: a listener bound afterwards is closed at once.
    private let drained = Mutex<Bool>(false)
    private let perLoop: [ServerLoopState]

    public init(group: EventLoopGroup, address: SocketAddress, configuration: UVTransportConfiguration = UVTransportConfiguration()) {
        self.group = group
        self.configuration = configuration
        self.requestedAddress = address
        let budget = InboundBudget(limit: configuration.maxBufferedInboundBytes,
                                   perConnection: configuration.maxBufferedInboundBytesPerConnection)
        let limiter = ConnectionLimiter(maxConnections: configuration.maxConnections,
                                        maxPerAddress: configuration.maxConnectionsPerClientAddress)
        perLoop = group.loops.map { ServerLoopState(loop: $0, config: configuration, budget: budget, limiter: limiter) }
    }

    /// The bound address once serving (with the real port when port 0 was asked for).
    public var localAddress: SocketAddress? { listener.withLock { $0?.localAddress } }

    public var boundAddress: String? { localAddress?.description }

    public func serve(_ handler: any ServerHandler) async throws {
        let states = perLoop
        let handler = ServerHandlerRef.make(handler)
        let l = try await TCPListener.bind(loops: group.loops, address: requestedAddress) { tcp in
            let state = states[tcp.loop.index]
            state.accept(tcp, handler: handler)
        }
        // A drain that ran while this bound found no listener to close: close this one now.
        let stale = listener.withLock { s -> Bool in
            if drained.withLock({ $0 }) { return true }
            s = l
            return false
        }
        if stale { await l.close() }
    }

    /// Streams open now, over all connections.
    public func activeStreamCount() async -> Int {
        var n = 0
        for s in perLoop { n += (try? await s.loop.submit { s.streamCount }) ?? 0 }
        return n
    }

    /// Connections open now.
    public func connectionCount() async -> Int {
        var n = 0
        for s in perLoop { n += (try? await s.loop.submit { s.connections.count }) ?? 0 }
        return n
    }

    /// Replaces the TLS context (a reloaded certificate, new trust) without a restart: connections accepted from
    /// now on use it; open ones keep theirs.
    public func reloadTLS(_ context: TLSContext) async {
        for s in perLoop { _ = try? await s.loop.submit { s.tls = context } }
    }

    public func drain(gracePeriod: Duration) async {
        let l = listener.withLock { s -> TCPListener? in
            drained.withLock { $0 = true }
            return s
        }
        if let l { await l.close() }
        for s in perLoop { _ = try? await s.loop.submit { s.drain() } }
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline {
            if await activeStreamCount() == 0 { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        for s in perLoop { _ = try? await s.loop.submit { s.closeAll() } }
    }
}

/// The server's connections on one loop. Loop-confined.
final class ServerLoopState: MuxConnectionOwner, @unchecked Sendable {
    unowned let loop: EventLoop
    let config: UVTransportConfiguration
    var connections: [ObjectIdentifier: MuxConnection] = [:]
    var draining = false
    /// The TLS context for new connections (replaced by a reload).
    var tls: TLSContext?
    private var housekeeping: LoopTimer?
    /// Tasks that run unary handlers on this loop (made on first use).
    private var workers: UnaryWorkerPool?

    /// Shared by every loop of the server.
    let budget: InboundBudget
    let limiter: ConnectionLimiter

    init(loop: EventLoop, config: UVTransportConfiguration, budget: InboundBudget, limiter: ConnectionLimiter) {
        self.loop = loop
        self.config = config
        self.budget = budget
        self.limiter = limiter
        tls = config.tls
    }

    var streamCount: Int { connections.values.reduce(0) { $0 + $1.activeStreams } }

    func accept(_ tcp: TCPConnection, handler: ServerHandlerRef) {
        if draining {
            tcp.close()
            return
        }
        if let tls {
            do {
                try TLSTransform.attach(to: tcp, context: tls)
            } catch {
                config.logger.error("TLS setup failed", metadata: ["error": "\(error)"])
                tcp.close()
                return
            }
        }
        var refusal: String?
        var address: String?
        if limiter.isLimiting {
            let host = tcp.remoteAddress?.host ?? "unknown"
            refusal = limiter.admit(host)
            if refusal == nil { address = host }
        }
        let c = MuxConnection(role: .server, tcp: tcp, settings: config.settings, handler: handler)
        c.logger = config.logger
        if workers == nil { workers = UnaryWorkerPool(loop: loop) }
        c.workers = workers
        c.owner = self
        c.inboundBudget = budget
        c.admittedAddress = address
        connections[ObjectIdentifier(c)] = c
        c.start()
        // Refused cleanly: SETTINGS, then DRAIN(0, RESOURCE_LIMIT): the client knows no stream ran and goes elsewhere.
        if let refusal { c.fail(.resourceLimit, refusal) }
        if housekeeping == nil {
            let interval = max(10, config.housekeepingIntervalMilliseconds)
            housekeeping = LoopTimer(loop: loop, timeout: interval, repeatEvery: interval) { [weak self] _ in self?.tick() }
            housekeeping?.unref()
        }
    }

    private func tick() {
        let now = loop.nowMilliseconds
        for c in Array(connections.values) {
            _ = c.tick(now: now, keepaliveInterval: config.keepaliveIntervalMilliseconds,
                       pingTimeout: config.pingTimeoutMilliseconds, settingsTimeout: config.settingsTimeoutMilliseconds,
                       frameTimeout: config.frameTimeoutMilliseconds)
        }
    }

    func drain() {
        draining = true
        for c in connections.values { c.beginDrain() }
    }

    func closeAll() {
        housekeeping?.cancel()
        housekeeping = nil
        for c in Array(connections.values) {
            // A connection whose streams all ended was closed by its DRAIN alone; one still busy is told why.
            if c.activeStreams == 0 { c.closeDrained() } else { c.fail(.cancelled, "server stopped: grace period over") }
        }
        workers?.close()
        workers = nil
    }

    func muxConnectionStreamClosed(_ connection: MuxConnection) {}
    func muxConnectionReady(_ connection: MuxConnection) {}
    func muxConnectionDraining(_ connection: MuxConnection) {}
    func muxConnectionClosed(_ connection: MuxConnection, error: TransportError?) {
        connections.removeValue(forKey: ObjectIdentifier(connection))
        if let address = connection.admittedAddress { limiter.release(address) }
    }
}
