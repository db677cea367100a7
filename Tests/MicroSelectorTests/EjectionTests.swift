import MicroInMemory
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Testing

@Suite struct EjectionTests {
    func selector(nodes count: Int, share: Double = 0.5, base: Duration = .milliseconds(300)) async throws -> RegistrySelector {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(count)))
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.ejection.baseTime = base
        c.ejection.maxTime = base * 10
        c.ejection.jitter = 0
        c.ejection.maxEjectedShare = share
        return RegistrySelector(registry: registry, configuration: c)
    }

    /// Picks `count` times; calls to nodes in `failing` fail. Returns picks per node.
    func run(_ s: RegistrySelector, count: Int, failing: Set<String>) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<count {
            let node = try await s.select("s").next()
            counts[node.id, default: 0] += 1
            s.mark("s", node: node, outcome: failing.contains(node.id) ? .failure(latency: .milliseconds(1)) : .success(latency: .milliseconds(1)))
        }
        return counts
    }

    @Test func ejectedAfterFiveFailuresInARowThenOneProbeBringsItBack() async throws {
        let s = try await selector(nodes: 4)
        // Round robin: n1 gets every 4th call; after its 5th failure it is out.
        let first = try await run(s, count: 40, failing: ["n1"])
        let ejectedAt = ContinuousClock.now
        #expect(first["n1"] == 5, "\(first)")
        // Still out before the base time ends (judged only if this machine got here in time).
        let during = try await run(s, count: 40, failing: [])
        if ContinuousClock.now - ejectedAt < .milliseconds(250) { #expect(during["n1"] == nil) }
        try await Task.sleep(for: .milliseconds(350))
        // The first call after the ejection time is its probe; it succeeds and the node is back in rotation.
        let after = try await run(s, count: 40, failing: [])
        #expect(after["n1", default: 0] >= 9, "\(after)")
    }

    @Test func failedProbeEjectsForLonger() async throws {
        let s = try await selector(nodes: 3)
        _ = try await run(s, count: 15, failing: ["n0"])
        try await Task.sleep(for: .milliseconds(350))
        // One probe, which fails: out again for 2 x base.
        let probe = try await run(s, count: 30, failing: ["n0"])
        let probeFailedAt = ContinuousClock.now
        #expect(probe["n0"] == 1, "\(probe)")
        try await Task.sleep(for: .milliseconds(350))
        let stillOut = try await run(s, count: 30, failing: [])["n0"] == nil
        // Judged only if this machine woke up in time (sleeps overshoot under load).
        if ContinuousClock.now - probeFailedAt < .milliseconds(550) { #expect(stillOut, "600 ms ejection not over yet") }
        try await Task.sleep(for: .milliseconds(350))
        #expect(try await run(s, count: 30, failing: [])["n0", default: 0] >= 9)
    }

    @Test func neverMoreThanTheShareAndNeverTheLastNode() async throws {
        let s = try await selector(nodes: 4, share: 0.5)
        // Every node fails: only two (50%) may be out.
        let counts = try await run(s, count: 400, failing: ["n0", "n1", "n2", "n3"])
        let inRotation = try await run(s, count: 100, failing: [])
        #expect(inRotation.count == 2, "\(counts) then \(inRotation)")

        let single = try await selector(nodes: 1, share: 1.0)
        let alone = try await run(single, count: 50, failing: ["n0"])
        #expect(alone["n0"] == 50, "a single-node service is never emptied")
    }

    @Test func lowSuccessRateEjects() async throws {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.ejection.jitter = 0
        let s = RegistrySelector(registry: registry, configuration: c)
        // n0 fails every other call: never 5 in a row, but 50% < 80% after 20 calls.
        var n0Calls = 0
        for _ in 0..<100 {
            let node = try await s.select("s").next()
            if node.id == "n0" {
                n0Calls += 1
                s.mark("s", node: node, outcome: n0Calls % 2 == 0 ? .failure(latency: .zero) : .success(latency: .zero))
            } else {
                s.mark("s", node: node, outcome: .success(latency: .zero))
            }
        }
        #expect(n0Calls == 20, "ejected at its 20th call")
    }

    @Test func resetForgetsEjections() async throws {
        let s = try await selector(nodes: 2, base: .seconds(30))
        _ = try await run(s, count: 10, failing: ["n0"])
        #expect(try await run(s, count: 10, failing: [])["n0"] == nil)
        s.reset("s")
        #expect(try await run(s, count: 10, failing: [])["n0"] == 5)
    }

    @Test func defaultsAreTheIssuesAndEnvoys() {
        let e = SelectorConfiguration().ejection
        #expect(e.consecutiveFailures == 5 && e.baseTime == .seconds(30) && e.maxTime == .seconds(300))
        #expect(e.maxEjectedShare == 0.5 && e.successRateThreshold == 0.8)
    }
}

@Suite struct NextMarkTests {
    @Test func markThroughNextEvenAfterThePoolChanged() async throws {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(3)))
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.ejection.consecutiveFailures = 2
        let s = RegistrySelector(registry: registry, configuration: c)
        // n0 fails twice, marked through its Next; in between, n2 leaves (node indexes move).
        for round in 0..<2 {
            var next = try await s.select("s")
            var node = try next.next()
            while node.id != "n0" {
                next.mark(node, outcome: .success(latency: .zero))
                next = try await s.select("s")
                node = try next.next()
            }
            if round == 1 {
                try await registry.deregister(Service(name: "s", nodes: [nodes(3)[2]]))
                // The in-memory registry's watch delivers at once; give the event time to arrive.
                try await Task.sleep(for: .milliseconds(200))
            }
            next.mark(node, outcome: .failure(latency: .zero))
        }
        let after = try await distribution(s, "s", count: 10)
        #expect(after == ["n1": 10], "n0 ejected (the cap allows 1 of 2)")
    }
}
