import ArgumentParser
import CLibUV
import Glibc
import MicroCore
import MicroEventLoop
import MicroMiddleware
import MicroRPC
import MicroUVTransport
import Micro
import Prometheus
import CoreMetrics

/// The CPU cost of a middleware chain per call, without the network: the server's unary path (route, chain,
/// handler) called in a loop as the transport calls it, and the client's call path over a transport that answers
/// at once. Thread CPU time per call, the least of several alternating rounds (host contention only adds).
enum ChainCost {
    /// A transport that answers every unary call at once with the request's message.
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

    static func serverConfiguration(_ chain: String, _ factory: any MetricsFactory) -> ServerConfiguration {
        var c = ServerConfiguration(name: "bench")
        switch chain {
        case "empty": c.use {}
        case "pass": c.middleware = PassThroughServerMiddleware()
        case "stock-noop":
            c.use {
                ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: 1e9, burst: 1_000_000)))
                MetricsMiddleware(factory: NOOPMetricsHandler.instance)
            }
        case "limit": c.use { ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: 1e9, burst: 1_000_000))) }
        case "metrics": c.use { MetricsMiddleware(factory: factory) }
        case "stock", "stock-prometheus":
            c.use {
                ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: 1e9, burst: 1_000_000)))
                MetricsMiddleware(factory: factory)
            }
        default: break
        }
        return c
    }

    static func clientConfiguration(_ chain: String, _ factory: any MetricsFactory) -> ClientConfiguration {
        var c = ClientConfiguration()
        switch chain {
        case "empty": c.use {}
        case "pass": c.middleware = PassThroughClientMiddleware()
        case "stock-noop":
            c.use {
                CircuitBreakerMiddleware()
                ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000))
                MetricsMiddleware(factory: NOOPMetricsHandler.instance)
            }
        case "limit": c.use { ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000)) }
        case "metrics": c.use { MetricsMiddleware(factory: factory) }
        case "stock", "stock-prometheus":
            c.use {
                CircuitBreakerMiddleware()
                ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000))
                MetricsMiddleware(factory: factory)
            }
        default: break
        }
        return c
    }

    static let chains = ["none", "empty", "pass", "limit", "metrics", "stock", "stock-noop", "stock-prometheus"]

    enum Side: String, ExpressibleByArgument, CaseIterable, Sendable { case both, server, client }

    static func run(chains: [String], rounds: Int, calls: Int, side: Side) async throws {
        let group = EventLoopGroup(threads: 1)
        let factory = MetricsRegistry().factory
        // swift-prometheus's own timers (a locked histogram), for comparison.
        let prometheusFactory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        var handlers: [String: any UnaryHandler] = [:]
        var servers: [Server] = []
        var clients: [String: Client] = [:]
        let head = RequestHead(service: "bench", endpoint: "echo", timeoutMicroseconds: 30_000_000)
        for chain in chains {
            let server = Server(configuration: serverConfiguration(chain, chain == "stock-prometheus" ? prometheusFactory : factory),
                                transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)))
            server.handle("echo") { request, _ in Response(body: request.body) }
            try await server.start()
            servers.append(server)
            handlers[chain] = server.unaryHandler(for: head)!
            clients[chain] = Client(transport: InstantTransport(), configuration: clientConfiguration(chain, chain == "stock-prometheus" ? prometheusFactory : factory))
        }
        let payload = [UInt8](repeating: 0x5A, count: 64)
        let request = Request(service: "bench", endpoint: "echo", body: payload)
        let options = CallOptions(address: "127.0.0.1:1")
        var serverBest: [String: Double] = [:]
        var clientBest: [String: Double] = [:]
        say("micro bench --chain-cost: CPU per call of each chain without the network, best of \(rounds) alternating rounds of \(calls) calls")
        for _ in 0..<rounds {
            for chain in chains {
                let handler = handlers[chain]!
                var t0 = threadCPUMicros()
                for _ in 0..<(side == .client ? 0 : calls) {
                    let reply = await handler.handle(UnaryRequest(head: head, message: payload, peer: "127.0.0.1:9", receivedAt: .now))
                    precondition(reply.message?.count == payload.count)
                }
                var t1 = threadCPUMicros()
                serverBest[chain] = min(serverBest[chain] ?? .infinity, (t1 - t0) * 1000 / Double(calls))
                let client = clients[chain]!
                t0 = threadCPUMicros()
                for _ in 0..<(side == .server ? 0 : calls) {
                    let response = try await client.call(request, options: options)
                    precondition(response.body.count == payload.count)
                }
                t1 = threadCPUMicros()
                clientBest[chain] = min(clientBest[chain] ?? .infinity, (t1 - t0) * 1000 / Double(calls))
            }
        }
        for chain in chains {
            var parts: [String] = []
            for (name, best, shown) in [("server", serverBest, side != .client), ("client", clientBest, side != .server)] where shown {
                let ns = best[chain]!
                parts.append("\(name) \(Int(ns)) ns/call" + (best["none"].map { " (+\(Int(ns - $0)))" } ?? ""))
            }
            say("\(chain): " + parts.joined(separator: ", "))
        }
        for s in servers { await s.shutdown(gracePeriod: .milliseconds(100)) }
        _ = group.shutdownGracefully()
    }
}
