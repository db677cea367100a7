import MicroInMemory
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Testing

@Suite struct StrategyTests {
    func selector(_ strategy: Strategy, nodes list: [Node]) async throws -> RegistrySelector {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: list))
        var c = SelectorConfiguration()
        c.strategy = strategy
        return RegistrySelector(registry: registry, configuration: c)
    }

    @Test func roundRobinIsExact() async throws {
        let s = try await selector(.roundRobin, nodes: nodes(4))
        let counts = try await distribution(s, "s", count: 4000)
        #expect(counts == ["n0": 1000, "n1": 1000, "n2": 1000, "n3": 1000])
    }

    @Test func randomIsWithinStatisticalBounds() async throws {
        let s = try await selector(.random, nodes: nodes(4))
        let n = 40_000
        let counts = try await distribution(s, "s", count: n)
        // Binomial(n, 1/4): standard deviation 86.6; 6 sigma is about 520.
        for id in ["n0", "n1", "n2", "n3"] {
            #expect(abs(counts[id, default: 0] - n / 4) < 520, "\(counts)")
        }
    }

    @Test func weightedIsProportional() async throws {
        let s = try await selector(.weighted, nodes: nodes(4) { ["weight": "\($0 + 1)"] })
        let counts = try await distribution(s, "s", count: 10_000)
        #expect(counts == ["n0": 1000, "n1": 2000, "n2": 3000, "n3": 4000])
    }

    @Test func leastOutstandingAvoidsASlowNode() async throws {
        let s = try await selector(.leastOutstanding, nodes: nodes(4))
        // n0 is slow: its calls stay outstanding for 20 picks; the others answer at once.
        var inFlight: [(node: Node, until: Int)] = []
        var counts: [String: Int] = [:]
        for i in 0..<4000 {
            let node = try await s.select("s").next()
            counts[node.id, default: 0] += 1
            if node.id == "n0" {
                inFlight.append((node, i + 20))
            } else {
                s.mark("s", node: node, outcome: .success(latency: .microseconds(100)))
            }
            while let first = inFlight.first, first.until <= i {
                inFlight.removeFirst()
                s.mark("s", node: first.node, outcome: .success(latency: .milliseconds(20)))
            }
        }
        // Round robin would give it 1,000; P2C only when its queue is empty and it is drawn.
        #expect(counts["n0", default: 0] < 250, "\(counts)")
    }

    @Test func peakEWMAAvoidsAHighLatencyNode() async throws {
        let s = try await selector(.peakEWMA, nodes: nodes(4))
        var counts: [String: Int] = [:]
        for _ in 0..<4000 {
            let node = try await s.select("s").next()
            counts[node.id, default: 0] += 1
            let latency: Duration = node.id == "n3" ? .milliseconds(50) : .milliseconds(1)
            s.mark("s", node: node, outcome: .success(latency: latency))
        }
        #expect(counts["n3", default: 0] < 100, "\(counts)")
        #expect(counts["n0", default: 0] > 1000, "\(counts)")
    }

    @Test func retriesPreferNodesNotTriedYet() async throws {
        for strategy in Strategy.allCases {
            let s = try await selector(strategy, nodes: nodes(3))
            let next = try await s.select("s")
            let picks = try (0..<3).map { _ in try next.next().id }
            #expect(Set(picks).count == 3, "\(strategy): \(picks)")
            // Then it starts over rather than failing.
            _ = try next.next()
        }
    }

    @Test func perCallStrategyOverride() async throws {
        let s = try await selector(.random, nodes: nodes(2))
        let counts = try await distribution(s, "s", count: 100, options: SelectOptions(strategy: .roundRobin))
        #expect(counts == ["n0": 50, "n1": 50])
    }
}
