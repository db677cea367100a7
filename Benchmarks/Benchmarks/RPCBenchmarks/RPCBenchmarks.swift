import Benchmark
import CoreMetrics
import MicroCore
import MicroEventLoop
import MicroInMemory
import MicroMiddleware
import MicroRPC
import MicroSelector
import MicroUVTransport

/// Allocations and time per operation of the RPC layer without the network: the server's unary path (route,
/// chain, handler, as the transport calls it), the client's call path (over a transport that answers at once), one
/// middleware hop on each side, and a selector pick. Allocation counts are exact and their thresholds tight; times
/// depend on the machine, so their thresholds are wide (see `Thresholds/` and the README of this folder). CPU time
/// is not a metric: package-benchmark reads it with 10 ms resolution, far above one sample here.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.mallocCountTotal, .wallClock],
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        thresholds: MicroThresholds.tolerances
    )

    let payload = [UInt8](repeating: 0x5A, count: 64)
    let head = RequestHead(service: "bench", endpoint: "echo", timeoutMicroseconds: 30_000_000)

    // Names without spaces or punctuation: package-benchmark writes threshold files under a cleaned-up name but
    // reads them under the name itself.
    for (name, chain) in [("no_middleware", MiddlewareChoice.none), ("one_passthrough_middleware", .pass), ("stock_chain", .stock)] {
        Benchmark("server_unary_path_\(name)_64B") { benchmark in
            let group = EventLoopGroup(threads: 1)
            let server = Server(configuration: chain.server,
                                transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)))
            server.handle("echo") { request, _ in Response(body: request.body) }
            try await server.start()
            let handler = server.unaryHandler(for: head)!
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let reply = await handler.handle(UnaryRequest(head: head, message: payload, peer: "127.0.0.1:9", receivedAt: .now))
                blackHole(reply)
            }
            benchmark.stopMeasurement()
            await server.shutdown(gracePeriod: .milliseconds(100))
            _ = group.shutdownGracefully()
        }

        Benchmark("client_call_path_\(name)_64B") { benchmark in
            let client = Client(transport: InstantTransport(), configuration: chain.client)
            let request = Request(service: "bench", endpoint: "echo", body: payload)
            let options = CallOptions(address: "127.0.0.1:1")
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try await client.call(request, options: options))
            }
            benchmark.stopMeasurement()
        }
    }

    Benchmark("selector_pick_select_next_mark_warm_10_nodes") { benchmark in
        let registry = MemoryRegistry()
        let nodes = (0..<10).map { Node(id: "node-\($0)", address: "127.0.0.1:\(20_000 + $0)") }
        try await registry.register(Service(name: "bench", version: "v1", nodes: nodes))
        let selector = RegistrySelector(registry: registry, configuration: SelectorConfiguration())
        _ = try await selector.select("bench")  // the one registry read
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let next = try await selector.select("bench")
            let node = try next.next()
            next.mark(node, outcome: .success(latency: .microseconds(100)))
        }
        benchmark.stopMeasurement()
        selector.close()
    }
}

/// The chains measured, the same on both sides' meaning as `micro bench --chain-cost`.
enum MiddlewareChoice {
    case none, pass, stock

    var server: ServerConfiguration {
        var c = ServerConfiguration(name: "bench")
        switch self {
        case .none: break
        case .pass: c.middleware = PassThroughServerMiddleware()
        case .stock:
            c.use {
                ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: 1e9, burst: 1_000_000)))
                MetricsMiddleware(factory: NOOPMetricsHandler.instance)
            }
        }
        return c
    }

    var client: ClientConfiguration {
        var c = ClientConfiguration()
        switch self {
        case .none: break
        case .pass: c.middleware = PassThroughClientMiddleware()
        case .stock:
            c.use {
                CircuitBreakerMiddleware()
                ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000))
                MetricsMiddleware(factory: NOOPMetricsHandler.instance)
            }
        }
        return c
    }
}

/// Answers every unary call at once with the request's message: the client's own path, without a network.
struct InstantTransport: ClientTransport {
    func openStream(to address: String, head: RequestHead, firstMessage: [UInt8]?, endOfInput: Bool,
                    deadline: Timestamp?) async throws(TransportError) -> ClientStream {
        throw TransportError(.connectFailed, "no streams here")
    }
    nonisolated(nonsending) func unary(to address: String, head: RequestHead, message: [UInt8],
                                       deadline: Timestamp?) async throws(TransportError) -> UnaryResponse {
        UnaryResponse(head: ResponseHead(), message: message)
    }
    func shutdown() async {}
}

/// The tolerances of `Benchmarks/check-thresholds` (which compares each benchmark's p90 with the committed one), the
/// same for every benchmark. A sample is 1,000 operations (`.kilo`): +100 allocations is 0.1 more per operation, so
/// one allocation more per operation fails while a stray one (an arena, a resize) does not; wall time may grow by
/// 60% (these machines lend their CPU to other guests).
enum MicroThresholds {
    static var tolerances: [BenchmarkMetric: BenchmarkThresholds] { [
        .mallocCountTotal: .init(absolute: [.p90: 100]),
        .wallClock: .init(relative: [.p90: 60.0]),
    ] }
}
