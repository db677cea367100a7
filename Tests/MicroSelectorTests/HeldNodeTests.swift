import MicroCore
import MicroInMemory
import MicroSelector
import Testing

/// `Outcome.held(for:)`: what the client reports when a node's circuit breaker is open. The pool skips the node
/// for that long, within its cap on ejected nodes, and counts neither a success nor a failure.
@Suite struct HeldNodeTests {
    func selector(nodes count: Int, share: Double = 0.5) async throws -> RegistrySelector {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(count)))
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.ejection.maxEjectedShare = share
        return RegistrySelector(registry: registry, configuration: c)
    }

    /// Picks `count` times, marking every pick a success; returns picks per node.
    func picks(_ s: RegistrySelector, _ count: Int) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<count {
            let node = try await s.select("s").next()
            counts[node.id, default: 0] += 1
            s.mark("s", node: node, outcome: .success(latency: .milliseconds(1)))
        }
        return counts
    }

    @Test("a held node is not picked while it is held; the others take its calls")
    func heldNodeSkipped() async throws {
        let s = try await selector(nodes: 3)
        let next = try await s.select("s")
        var held = try next.next()
        while held.id != "n1" {
            s.mark("s", node: held, outcome: .ignored)
            held = try next.next()
        }
        s.mark("s", node: held, outcome: .held(for: .seconds(600)))
        let counts = try await picks(s, 60)
        #expect(counts["n1"] == nil, "\(counts)")
        #expect(counts["n0", default: 0] + counts["n2", default: 0] == 60)
        s.close()
    }

    @Test("holding never takes every node out: with one node, the held node is still picked")
    func capKeepsOneNode() async throws {
        let s = try await selector(nodes: 1)
        let node = try await s.select("s").next()
        s.mark("s", node: node, outcome: .held(for: .seconds(600)))
        let counts = try await picks(s, 5)
        #expect(counts[node.id] == 5)
        s.close()
    }

    @Test("after the hold a node comes back (its first call is a probe)")
    func heldNodeReturns() async throws {
        let s = try await selector(nodes: 2)
        let next = try await s.select("s")
        var held = try next.next()
        while held.id != "n0" {
            s.mark("s", node: held, outcome: .ignored)
            held = try next.next()
        }
        s.mark("s", node: held, outcome: .held(for: .milliseconds(1)))
        // Waiting for the event (the node picked again), bounded.
        let end = ContinuousClock.now + .seconds(30)
        var back = false
        while !back && ContinuousClock.now < end {
            back = try await picks(s, 2)["n0"] != nil
            if !back { try await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(back)
        s.close()
    }
}
