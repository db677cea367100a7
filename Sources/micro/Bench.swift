import ArgumentParser
import CLibUV
import Foundation
import Glibc
import Micro
import MicroBroker
import MicroCore
import MicroEventLoop
import MicroMiddleware
import MicroRPC
import MicroTLS
import MicroUVTransport

/// `micro bench`: a bounded load run of echo calls against an embedded server on loopback (the default, and the
/// README's main job through `./scripts/bench`) or a running service, with live progress, latency percentiles, CPU
/// and allocations per call; and the lab measurements (`--chain-cost`, `--hedging`, `--tls-handshakes`,
/// `--publishes`).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-test echo calls: an embedded server on loopback by default, or a running service.",
        discussion: """
        Without --address or --service, starts an echo server in this process (its own event loops; TLS with \
        --tls_cert/--tls_key, which the client then trusts through --tls_ca or --tls_insecure) and calls it \
        through the RPC layer (--layer transport: the bare transport). With --address host:port or --service NAME \
        (through discovery), calls --endpoint of that service (the example's Echo.Call by default; --address with \
        --service names the service at that address, greeter by default). Prints a \
        progress line every second (rate, errors, p50/p99 of that second), then calls/s, latency percentiles, CPU \
        per call on the client's (and the embedded server's) loop threads, allocations per call when the malloc \
        counter is preloaded (./scripts/bench does), and the host's steal time. Exits 1 when a call failed.
        Example: micro bench --connections 4 --concurrency 128 --size 256 --duration 10

        Lab measurements: --chain-cost (CPU per call of middleware chains without the network), --hedging (p99 with \
        one of three nodes 50 ms late for 10% of calls, with and without hedging), --tls-handshakes N (full and \
        resumed handshakes per second), --publishes N (the embedded broker).
        """
    )

    @OptionGroup var flags: ServiceFlags
    @Option(help: "Connections to the server.") var connections = 1
    @Option(help: "Calls in flight (streams in --mode stream); with --rate, the workers that call on schedule.") var concurrency = 64
    @Option(help: "Open loop: this many calls per second in all, each worker calling on a schedule and each latency counted from the scheduled time (as wrk2 and ghz --rps do). Default: closed loop, each worker calls again when its answer comes.") var rate: Double?
    @Option(help: "Bytes per request.") var size = 64
    @Option(help: "Send this JSON body (checked) instead of --size bytes; answers are then not compared with it.") var body: String?
    @Option(help: "Measured time: 5, 10s, 500ms.") var duration = DurationArgument(.seconds(5), text: "5s")
    @Option(help: "Warm-up before measuring.") var warmup = DurationArgument(.seconds(1), text: "1s")
    @Option(help: "unary: one call per request; stream: requests as messages on long-lived streams.") var mode: Mode = .unary
    @Option(help: "rpc: through Client and Server; transport: the bare multiplexed transport (embedded server only).") var layer: Layer = .rpc
    @Option(help: "The chain on both sides of the embedded run: none, empty, stock (server rate limit + metrics; client breaker + rate limit + metrics), stock-server (the server's part alone), limit, metrics.") var middleware: MiddlewareChoice = .none
    @Option(help: "Call a running server at host:port.") var address: String?
    @Option(help: "Call a running service found through the registry; with --address, the service's name at that address (default: the example's, greeter).") var service: String?
    @Option(help: "The endpoint of --address/--service.") var endpoint: String?
    @Option(help: "Event loops of the embedded server.") var serverThreads = 1
    @Option(help: "Event loops of the client.") var clientThreads = 1
    @Flag(help: "Client loops on CPU 0, server loops on CPU 1 (steadier figures on a 2-core machine).") var pin = false
    @Flag(help: "No progress lines.") var quiet = false
    @Option(help: "The process id of the server behind --address/--service: its CPU time per call is reported too (from /proc).") var serverPid: Int32?
    @Flag(help: "End with one JSON line of the figures (calls, calls_per_s, p50_us, p99_us, p999_us, errors, server and client CPU per call, steal), for scripts such as Benchmarks/compare.") var json = false
    @Flag(help: "Lab: CPU per call of middleware chains, server and client paths without the network.") var chainCost = false
    @Option(help: "With --chain-cost: the chains to run, comma-separated (default: all of none, empty, pass, limit, metrics, stock, stock-noop, stock-prometheus).") var chains: String?
    @Option(help: "With --chain-cost: calls per chain and round.") var calls = 100_000
    @Option(help: "With --chain-cost: alternating rounds (the least CPU per call is kept).") var rounds = 15
    @Option(help: "With --chain-cost: server, client or both (one side alone, e.g. to count its instructions under valgrind).") var side: ChainCost.Side = .both
    @Flag(help: "Lab: p99 with one of three nodes 50 ms late for 10% of calls, with and without hedging.") var hedging = false
    @Option(help: "Lab: this many full and resumed TLS handshakes, per second.") var tlsHandshakes: Int?
    @Option(help: "Lab: this many publishes through the embedded broker, to a subscriber of the same broker, then of a second one over loopback (--concurrency tasks).") var publishes: Int?

    enum Mode: String, ExpressibleByArgument, CaseIterable { case unary, stream }
    enum Layer: String, ExpressibleByArgument, CaseIterable { case rpc, transport }
    enum MiddlewareChoice: String, ExpressibleByArgument, CaseIterable {
        case none, empty, stock, limit, metrics
        /// The stock server chain with no client middleware: the server's own cost, apart from the client's speed.
        case stockServer = "stock-server"
    }

    func validate() throws {
        for (name, value, limit) in [("--connections", connections, 100_000), ("--concurrency", concurrency, 1_000_000),
                                     ("--server-threads", serverThreads, 256), ("--client-threads", clientThreads, 256)] {
            if value <= 0 || value > limit { throw ValidationError("\(name) needs 1 to \(limit), not \(value)") }
        }
        if size < 0 || size > 16 << 20 { throw ValidationError("--size needs 0 to 16 MiB, not \(size)") }
        if calls <= 0 || calls > 100_000_000 { throw ValidationError("--calls needs 1 to 100,000,000, not \(calls)") }
        if rounds <= 0 || rounds > 1000 { throw ValidationError("--rounds needs 1 to 1000, not \(rounds)") }
        if let chains, let unknown = chains.split(separator: ",").map(String.init).first(where: { !ChainCost.chains.contains($0) }) {
            throw ValidationError("--chains: unknown chain \(unknown) (known: \(ChainCost.chains.joined(separator: ", ")))")
        }
        if let publishes, publishes <= 0 { throw ValidationError("--publishes needs a positive integer, not \(publishes)") }
        if let tlsHandshakes, tlsHandshakes <= 0 { throw ValidationError("--tls-handshakes needs a positive integer, not \(tlsHandshakes)") }
        if duration.seconds > 3600 || warmup.seconds > 600 { throw ValidationError("--duration at most 1 h, --warmup at most 10 min") }
        let remote = address != nil || service != nil
        if remote && (layer == .transport || middleware != .none) { throw ValidationError("--layer and --middleware are for the embedded server") }
        if let serverPid {
            if !remote { throw ValidationError("--server-pid is for a server behind --address or --service") }
            if serverPid <= 0 || access("/proc/\(serverPid)/stat", R_OK) != 0 { throw ValidationError("--server-pid: no process \(serverPid)") }
        }
        if layer == .transport && (mode == .stream || body != nil) { throw ValidationError("--layer transport measures unary raw calls") }
        if let rate {
            if !(rate >= 0.01 && rate <= 10_000_000) { throw ValidationError("--rate needs 0.01 to 10,000,000 calls/s, not \(rate)") }
            if mode == .stream { throw ValidationError("--rate paces unary calls; --mode stream runs closed loop") }
        }
    }

    func run() async throws {
        if let tlsHandshakes { return try await HandshakeBench.run(count: tlsHandshakes) }
        if chainCost {
            return try await ChainCost.run(chains: chains.map { $0.split(separator: ",").map(String.init) } ?? ChainCost.chains,
                                           rounds: rounds, calls: calls, side: side)
        }
        if hedging {
            let strategy: Strategy
            do { strategy = try flags.resolve(environment: ProcessInfo.processInfo.environment).selector.strategy } catch {
                throw CLIError("\(error)", .usage)
            }
            guard try await HedgingBench.run(duration: duration.seconds, concurrency: concurrency == 64 ? 16 : concurrency,
                                             strategy: strategy) else {
                throw CLIError("the hedging run failed (see above)", .failed)
            }
            return
        }
        if let publishes { return try await BrokerBench.run(publishes: publishes, tasks: concurrency, flags: flags) }
        var options: ServiceOptions
        do { options = try flags.resolve(environment: ProcessInfo.processInfo.environment) } catch {
            throw CLIError(error.description, .usage)
        }
        let payload = try body.map { try checkedBody($0, raw: false) } ?? [UInt8](repeating: 0x5A, count: size)
        if address == nil && service == nil {
            try await runEmbedded(options: options, payload: payload)
        } else {
            try await runRemote(options: options, payload: payload)
        }
    }

    // MARK: embedded

    /// Echo on the transport's unary path: the request's message back in one RESPONSE frame.
    final class TransportEcho: UnaryHandler, ServerHandler {
        nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply { UnaryReply(message: request.message) }
        func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { self }
        func handleStream(_ stream: ServerStream) async { await serveAsStream(stream) }
    }

    private func runEmbedded(options: ServiceOptions, payload: [UInt8]) async throws {
        let serverGroup = EventLoopGroup(threads: serverThreads)
        let clientGroup = EventLoopGroup(threads: clientThreads)
        if pin {
            let cpus = EventLoopGroup.coreCount
            for loop in clientGroup.loops { _ = try? await loop.submit { micro_pin_current_thread(0) } }
            for loop in serverGroup.loops { _ = try? await loop.submit { micro_pin_current_thread(Int32(1 % cpus)) } }
        }
        var serverTransportConfiguration = UVTransportConfiguration()
        serverTransportConfiguration.settings.maxConcurrentStreams = UInt32(max(4096, concurrency))
        var clientTransportConfiguration = UVTransportConfiguration()
        clientTransportConfiguration.maxConnectionsPerAddress = connections
        clientTransportConfiguration.maxStreamsPerConnection = (concurrency + connections - 1) / connections
        if let files = options.tls {
            do {
                if let cert = files.certificate, let key = files.key {
                    var tls = TLSConfiguration()
                    tls.certificateChain = .file(cert)
                    tls.privateKey = .file(key)
                    serverTransportConfiguration.tls = try TLSContext(role: .server, configuration: tls)
                }
                var tls = TLSConfiguration()
                if let ca = files.certificateAuthority { tls.trustRoots = .file(ca) }
                if files.insecure { tls.verification = .none }
                tls.serverName = files.serverName
                if files.certificateAuthority != nil || files.insecure {
                    clientTransportConfiguration.tls = try TLSContext(role: .client, configuration: tls)
                }
            } catch {
                throw CLIError("TLS: \(error)", .usage)
            }
        }
        let serverTransport = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0),
                                                configuration: serverTransportConfiguration)
        let metricsFactory = MetricsRegistry().factory
        let unlimited = Rate(perSecond: 1e9, burst: 1_000_000)
        var serverConfiguration = ServerConfiguration(name: "bench")
        var clientConfiguration = ClientConfiguration()
        switch middleware {
        case .none: break
        case .empty:
            serverConfiguration.use {}
            clientConfiguration.use {}
        case .stock:
            serverConfiguration.use {
                ServerRateLimitMiddleware(ServerRateLimitMiddleware.Configuration(endpoint: unlimited))
                MetricsMiddleware(factory: metricsFactory)
            }
            clientConfiguration.use {
                CircuitBreakerMiddleware()
                ClientRateLimitMiddleware(rate: unlimited)
                MetricsMiddleware(factory: metricsFactory)
            }
        case .stockServer:
            serverConfiguration.use {
                ServerRateLimitMiddleware(ServerRateLimitMiddleware.Configuration(endpoint: unlimited))
                MetricsMiddleware(factory: metricsFactory)
            }
        case .limit:
            serverConfiguration.use { ServerRateLimitMiddleware(ServerRateLimitMiddleware.Configuration(endpoint: unlimited)) }
            clientConfiguration.use { ClientRateLimitMiddleware(rate: unlimited) }
        case .metrics:
            serverConfiguration.use { MetricsMiddleware(factory: metricsFactory) }
            clientConfiguration.use { MetricsMiddleware(factory: metricsFactory) }
        }
        let server = Server(configuration: serverConfiguration, transport: serverTransport)
        server.handle("Echo.Call") { request, _ in Response(body: request.body) }
        server.handleStream("Echo.Stream") { stream in
            while let message = try await stream.receive() { try await stream.send(message) }
        }
        if layer == .rpc {
            try await server.start()
        } else {
            try await serverTransport.serve(TransportEcho())
        }
        guard let bound = serverTransport.localAddress?.description else { throw CLIError("the embedded server did not bind", .unavailable) }
        let clientTransport = UVClientTransport(group: clientGroup, configuration: clientTransportConfiguration)
        let client = Client(transport: clientTransport, configuration: clientConfiguration)
        let clientLoop = try clientTransport.loop(for: bound)
        let what = layer == .rpc ? "RPC" : "transport"
        let chain = middleware == .none ? "" : " (middleware: \(middleware.rawValue))"
        say("micro bench: \(what)\(chain) \(mode.rawValue) echo, \(payload.count) B, \(connections) connection(s) x \(concurrency) \(rate.map { "worker(s) at \(Int($0)) calls/s" } ?? "in flight"), \(duration) (+\(warmup) warm-up), server \(serverThreads) loop(s), client \(clientThreads) loop(s), \(bound)\(serverTransportConfiguration.tls != nil ? ", TLS" : "")")
        let run = LoadRun(payload: payload, echoed: true, concurrency: concurrency, warmup: warmup.duration, duration: duration.duration,
                          progress: !quiet, json: json, rate: rate, workerLoop: { _ in clientLoop }, clientLoops: clientGroup.loops,
                          serverLoops: serverGroup.loops, serverProcess: nil)
        let ok: Bool
        do {
            switch (layer, mode) {
            case (.transport, _):
                let head = RequestHead(service: "bench", endpoint: "Echo.Call")
                ok = try await run.unary(TransportLoadCall(transport: clientTransport, address: bound, head: head, message: payload))
            case (.rpc, .unary):
                let request = Request(service: "bench", endpoint: "Echo.Call", body: payload)
                let options = CallOptions(address: bound)
                ok = try await run.unary(ClientLoadCall(client: client, request: request, options: options))
            case (.rpc, .stream):
                ok = try await run.streams(client, service: "bench", endpoint: "Echo.Stream", contentType: ContentType.raw,
                                           options: CallOptions(address: bound))
            }
        } catch {
            await clientTransport.shutdown()
            await server.shutdown(gracePeriod: .seconds(1))
            _ = await clientGroup.shutdown()
            _ = await serverGroup.shutdown()
            throw error
        }
        await clientTransport.shutdown()
        if layer == .rpc { await server.shutdown(gracePeriod: .seconds(1)) } else { await serverTransport.drain(gracePeriod: .seconds(1)) }
        let clientClean = await clientGroup.shutdown()
        let serverClean = await serverGroup.shutdown()
        let clean = clientClean && serverClean
        if !clean { say("warning: an event loop did not close clean") }
        if !ok { throw CLIError("some calls failed (see the first error above)", .failed) }
    }

    // MARK: remote

    private func runRemote(options: ServiceOptions, payload: [UInt8]) async throws {
        var options = options
        options.transportThreads = clientThreads
        options.connectionsPerNode = connections
        options.broker = .none
        var clientConfiguration = ClientConfiguration()
        clientConfiguration.waitForNode = false
        let micro: MicroService
        do { micro = try MicroService(name: "micro-bench", options: options, client: clientConfiguration) } catch {
            throw CLIError(error.description, .usage)
        }
        let serviceName = service ?? "greeter"
        let endpointName = endpoint ?? (mode == .unary ? "Echo.Call" : "Greeter.Stream")
        let contentType = body == nil ? ContentType.raw : ContentType.json
        let callOptions = CallOptions(timeout: .seconds(30), address: address, waitForNode: false)
        let outcome: Result<Bool, any Error>
        do {
            if let service, address == nil { try await requireService(service, in: micro) }
            say("micro bench: \(mode.rawValue) \(endpointName), \(body.map { "\($0.utf8.count) B of JSON" } ?? "\(payload.count) B"), \(connections) connection(s) x \(concurrency) \(rate.map { "worker(s) at \(Int($0)) calls/s" } ?? "in flight"), \(duration) (+\(warmup) warm-up), \(address ?? "service \(serviceName) (discovery)")\(options.tls != nil ? ", TLS" : "")")
            let request = Request(service: serviceName, endpoint: endpointName, contentType: contentType, body: payload)
            if mode == .unary {
                // The first call dials; a target that cannot answer fails here, with its error.
                do { _ = try await micro.client.call(request, options: callOptions) } catch let error as RPCError {
                    throw CLIError(error, service: serviceName, endpoint: endpointName)
                }
            }
            // Each worker on a client loop (the address's, or in turn through discovery): a call never changes threads.
            let loops = micro.group.loops
            let addressLoop = address.flatMap { try? (micro.client.transport as? UVClientTransport)?.loop(for: $0) }
            let run = LoadRun(payload: payload, echoed: body == nil, concurrency: concurrency, warmup: warmup.duration, duration: duration.duration,
                              progress: !quiet, json: json, rate: rate, workerLoop: { addressLoop ?? loops[$0 % loops.count] }, clientLoops: loops,
                              serverLoops: [], serverProcess: serverPid)
            let client = micro.client
            if mode == .unary {
                outcome = .success(try await run.unary(ClientLoadCall(client: client, request: request, options: callOptions)))
            } else {
                outcome = .success(try await run.streams(client, service: serviceName, endpoint: endpointName, contentType: contentType, options: callOptions))
            }
        } catch {
            outcome = .failure(error)
        }
        await micro.close()
        if try !outcome.get() { throw CLIError("some calls failed (see the first error above)", .failed) }
    }
}

extension Duration {
    /// The duration in seconds, for rates and reports.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Publishes per second through the embedded broker: to a subscriber of the publishing broker, then to one of a
/// second broker (its own listener, over loopback TCP).
enum BrokerBench {
    static func run(publishes n: Int, tasks: Int, flags: ServiceFlags) async throws {
        let options: ServiceOptions
        do { options = try flags.resolve(environment: ProcessInfo.processInfo.environment) } catch {
            throw CLIError(error.description, .usage)
        }
        let registry: any Registry
        do { registry = try options.registry.makeRegistry() } catch { throw CLIError("registry: \(error)", .usage) }
        let group = EventLoopGroup(threads: 1)
        let broker = EmbeddedBroker(group: group, registry: registry)
        let other = EmbeddedBroker(group: group, registry: registry)
        let prefix = "bench-\(ProcessInfo.processInfo.processIdentifier)-"
        var failure: (any Error)?
        for (name, subscriber) in [("same broker", broker), ("second broker over loopback", other)] where failure == nil {
            let topic = prefix + (subscriber === broker ? "same" : "other")
            do {
                let subscription = try await subscriber.subscribe(topic) { _ in }
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { g in
                    for t in 0..<min(tasks, n) {
                        g.addTask {
                            for _ in stride(from: t, to: n, by: min(tasks, n)) {
                                let r = try await broker.publish(topic, BrokerMessage(body: Array("payload".utf8)))
                                if r.delivered != 1 { throw CLIError("a message reached nobody", .unavailable) }
                            }
                        }
                    }
                    try await g.waitForAll()
                }
                let elapsed = start.duration(to: .now).inSeconds
                say("\(name): \(n) publishes from \(min(tasks, n)) task(s) in \(String(format: "%.3f", elapsed)) s: \(Int(Double(n) / elapsed))/s")
                await subscription.unsubscribe()
            } catch {
                failure = error
            }
        }
        await other.close()
        await broker.close()
        await group.shutdown()
        if let failure { throw failure as? CLIError ?? CLIError("publish: \(failure)", .failed) }
    }
}
