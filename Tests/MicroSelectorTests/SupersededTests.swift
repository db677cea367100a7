import MicroCore
import MicroInMemory
import MicroSelector
import Testing

/// `Outcome.superseded(after:)`: a hedge's loser. The call stays counted against its node for eight times as long
/// as it ran, so least-outstanding keeps sending the slow node fewer calls (as it would if the call were still running);
/// peak EWMA takes the time as a latency sample. Neither a success nor a failure.
@Suite struct SupersededTests {
    func selector(nodes count: Int, strategy: Strategy) async throws -> RegistrySelector {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(count)))
        var c = SelectorConfiguration()
        c.strategy = strategy
        return RegistrySelector(registry: registry, configuration: c)
    }

    /// Picks until node `id` comes up (the others are marked ignored, so they count nothing).
    func pick(_ s: RegistrySelector, _ id: String) async throws -> Node {
        let next = try await s.select("s")
        var node = try next.next()
        while node.id != id {
            s.mark("s", node: node, outcome: .ignored)
            node = try next.next()
        }
        return node
    }

    /// Picks `count` times, marking every pick a success; returns picks per node.
    func picks(_ s: RegistrySelector, _ count: Int) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<count {
            let node = try await s.select("s").next()
            counts[node.id, default: 0] += 1
            s.mark("s", node: node, outcome: .success(latency: .microseconds(100)))
        }
        return counts
    }

    @Test("least-outstanding: a superseded call still counts against its node, so the other node takes the calls")
    func lingersAgainstItsNode() async throws {
        let s = try await selector(nodes: 2, strategy: .leastOutstanding)
        let slow = try await pick(s, "n0")
        s.mark("s", node: slow, outcome: .superseded(after: .seconds(600)))
        let counts = try await picks(s, 50)
        #expect(counts["n0"] == nil, "\(counts)")
        #expect(counts["n1"] == 50)
        s.close()
    }

    @Test("least-outstanding: marked ignored instead, the node's slot is free at once and it gets calls again")
    func ignoredFreesTheSlot() async throws {
        let s = try await selector(nodes: 2, strategy: .leastOutstanding)
        let node = try await pick(s, "n0")
        s.mark("s", node: node, outcome: .ignored)
        let counts = try await picks(s, 200)
        #expect(counts["n0", default: 0] > 0, "\(counts)")
        s.close()
    }

    @Test("the superseded call's slot ends (eight times as long as it ran): the node is picked again")
    func lingeringEnds() async throws {
        let s = try await selector(nodes: 2, strategy: .leastOutstanding)
        let slow = try await pick(s, "n0")
        s.mark("s", node: slow, outcome: .superseded(after: .milliseconds(1)))
        // Waiting for the event (the node picked again), bounded.
        let end = ContinuousClock.now + .seconds(30)
        var back = false
        while !back && ContinuousClock.now < end {
            back = try await picks(s, 4)["n0"] != nil
            if !back { try await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(back)
        s.close()
    }

    @Test("peak EWMA: the time a superseded call ran is a latency sample, so the node is avoided")
    func peakEWMASample() async throws {
        let s = try await selector(nodes: 2, strategy: .peakEWMA)
        // Both nodes answered fast once; then n0 loses a hedge after 50 ms (its outstanding slot lingers 50 ms).
        for id in ["n0", "n1"] {
            let node = try await pick(s, id)
            s.mark("s", node: node, outcome: .success(latency: .microseconds(100)))
        }
        let slow = try await pick(s, "n0")
        s.mark("s", node: slow, outcome: .superseded(after: .milliseconds(50)))
        let counts = try await picks(s, 50)
        #expect(counts["n0"] == nil, "\(counts)")
        s.close()
    }

    @Test("a superseded probe lets the next call probe (as an ignored one does), and counts no failure")
    func supersededIsNoFailure() async throws {
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.ejection.consecutiveFailures = 2
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        let s = RegistrySelector(registry: registry, configuration: c)
        // Many superseded calls in a row do not eject the node.
        for _ in 0..<10 {
            let node = try await pick(s, "n0")
            s.mark("s", node: node, outcome: .superseded(after: .microseconds(1)))
        }
        let end = ContinuousClock.now + .seconds(30)
        var seen = false
        while !seen && ContinuousClock.now < end {
            seen = try await picks(s, 4)["n0"] != nil
            if !seen { try await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(seen)
        s.close()
    }
}
