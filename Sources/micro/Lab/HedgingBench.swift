import CLibUV
import Glibc
import MicroCore
import MicroEventLoop
import MicroInMemory
import MicroRPC
import MicroSelector
import MicroUVTransport
import Synchronization

/// The hedging figures: three nodes on loopback, one of which answers 50 ms late for 10% of its calls; a client
/// that selects among them (the registry selector, its default strategy) makes idempotent calls with a fixed
/// number in flight. Phases of `duration` seconds each, on the same servers, in three alternating rounds: all nodes
/// healthy without and with hedging (what hedging itself costs), the slow node without hedging, and the slow node
/// with hedging (delay: the observed p95, then p90). Prints each phase's latency
/// percentiles, and for the hedged phase the attempts per call and the hedges, which the retry budget bounds.
enum HedgingBench {
    final class Node: Sendable {
        let slow = Atomic<Bool>(false)
        let calls = Atomic<Int>(0)
        let cancelled = Atomic<Int>(0)
        let random = Mutex(FastRandomSource())
    }

    /// xorshift, for the 10%.
    struct FastRandomSource {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        mutating func unit() -> Double {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return Double(state >> 11) / Double(1 << 53)
        }
    }

    static func run(duration: Double, concurrency: Int, strategy: Strategy) async throws -> Bool {
        let registry = MemoryRegistry()
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        var nodes: [Node] = []
        var servers: [Server] = []
        for _ in 0..<3 {
            let node = Node()
            nodes.append(node)
            let transport = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0))
            let server = Server(configuration: ServerConfiguration(name: "hedged"), transport: transport, registry: registry)
            server.handle("echo") { request, _ in
                node.calls.add(1, ordering: .relaxed)
                if node.slow.load(ordering: .relaxed), node.random.withLock({ $0.unit() }) < 0.1 {
                    do {
                        try await Task.sleep(for: .milliseconds(50))
                    } catch {
                        node.cancelled.add(1, ordering: .relaxed)
                        throw error
                    }
                }
                return Response(body: request.body)
            }
            try await server.start()
            servers.append(server)
        }
        let transport = UVClientTransport(group: clientGroup)
        var selection = SelectorConfiguration()
        selection.strategy = strategy
        let selector = RegistrySelector(registry: registry, configuration: selection)
        let loop = clientGroup.loops[0]
        let request = Request(service: "hedged", endpoint: "echo", body: [UInt8](repeating: 0x5A, count: 64))
        say("micro bench --hedging: 3 nodes, node 0 answers 50 ms late for 10% of its calls (when slow); \(concurrency) calls in flight, \(duration) s per phase, selector \(strategy.rawValue)")

        func phase(_ name: String, hedging: HedgingPolicy?) async throws -> [UInt32] {
            var config = ClientConfiguration()
            config.hedging = hedging
            let client = Client(transport: transport, selector: selector, configuration: config)
            let options = CallOptions(timeout: .seconds(5), idempotent: true)
            let before = nodes.map { $0.calls.load(ordering: .relaxed) }
            let stealBefore = LoopCPU.stealTicks()
            let stopAt = Timestamp.now.advanced(by: .milliseconds(Int(duration * 1000)))
            let workers = (0..<concurrency).map { _ in
                Task(executorPreference: loop) { () -> ([UInt32], Int) in
                    var mine: [UInt32] = []
                    var failed = 0
                    while Timestamp.now < stopAt {
                        let t0 = Timestamp.now
                        do {
                            _ = try await client.call(request, options: options)
                            mine.append(UInt32(clamping: t0.nanoseconds(to: .now) / 1000))
                        } catch {
                            failed += 1
                        }
                    }
                    return (mine, failed)
                }
            }
            var all: [UInt32] = []
            var failures = 0
            for w in workers {
                let (mine, failed) = await w.value
                all += mine
                failures += failed
            }
            let sorted = all.sorted()
            var steal = ""
            if let a = stealBefore, let b = LoopCPU.stealTicks() {
                steal = "; steal \(fixed(LoopCPU.stealShare(ticks: b - a, seconds: duration), 1))%"
            }
            let after = nodes.map { $0.calls.load(ordering: .relaxed) }
            let attempts = zip(after, before).map { $0 - $1 }
            func pct(_ p: Double) -> UInt32 { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            let total = attempts.reduce(0, +)
            say("\(name): \(sorted.count) calls, \(failures) failed; p50 \(pct(0.5)) µs  p90 \(pct(0.9)) µs  p99 \(pct(0.99)) µs  p99.9 \(pct(0.999)) µs; attempts per node \(attempts), \(fixed(Double(total) / Double(max(1, sorted.count)), 3)) attempts per call\(steal)")
            return sorted
        }

        _ = try await phase("warm-up", hedging: nil)
        // Alternating rounds, so that host noise (steal) spreads over all three phases; the medians are compared.
        var healthy: [Double] = [], slow: [Double] = [], hedged: [Double] = [], hedged90: [Double] = []
        func p99(_ s: [UInt32]) -> Double { s.isEmpty ? 0 : Double(s[min(s.count - 1, Int(Double(s.count) * 0.99))]) }
        for round in 1...3 {
            nodes[0].slow.store(false, ordering: .relaxed)
            healthy.append(p99(try await phase("round \(round) healthy, no hedging", hedging: nil)))
            // What hedging costs when nothing is slow: its p50 and rate against the line above.
            _ = try await phase("round \(round) healthy, hedging at p95", hedging: HedgingPolicy(delay: .percentile(0.95)))
            nodes[0].slow.store(true, ordering: .relaxed)
            slow.append(p99(try await phase("round \(round) node 0 slow, no hedging", hedging: nil)))
            hedged.append(p99(try await phase("round \(round) node 0 slow, hedging at p95", hedging: HedgingPolicy(delay: .percentile(0.95)))))
            hedged90.append(p99(try await phase("round \(round) node 0 slow, hedging at p90", hedging: HedgingPolicy(delay: .percentile(0.90)))))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        say("median p99: healthy \(Int(median(healthy))) µs, slow node without hedging \(Int(median(slow))) µs, hedging at p95 \(Int(median(hedged))) µs, at p90 \(Int(median(hedged90))) µs")
        let h = max(1, median(healthy))
        say("p99 / healthy p99: hedging at p95 \(fixed(median(hedged) / h, 2)), at p90 \(fixed(median(hedged90) / h, 2)) (bar: at most 2); without hedging \(fixed(median(slow) / h, 2))")
        say("slow node: \(nodes[0].cancelled.load(ordering: .relaxed)) handlers cancelled (lost hedges, cancelled on the wire)")
        for s in servers { await s.shutdown(gracePeriod: .seconds(1)) }
        selector.close()
        await transport.shutdown()
        return serverGroup.shutdownGracefully() && clientGroup.shutdownGracefully()
    }
}

/// `x` with `digits` decimals (no Foundation here).
func fixed(_ x: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let n = Int((x * scale).rounded())
    let whole = n / Int(scale)
    var frac = String(abs(n) % Int(scale))
    while frac.count < digits { frac = "0" + frac }
    return "\(whole).\(frac)"
}
