import MicroInMemory
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Testing

@Suite struct FilterAndCanaryTests {
    func registry() async throws -> MemoryRegistry {
        let r = MemoryRegistry()
        try await r.register(Service(name: "s", version: "v1", endpoints: [Endpoint(name: "A"), Endpoint(name: "B")],
                                     nodes: nodes(4, prefix: "one-") { ["dc": $0 < 2 ? "eu" : "us"] }))
        try await r.register(Service(name: "s", version: "v2", endpoints: [Endpoint(name: "A")],
                                     nodes: nodes(2, prefix: "two-") { _ in ["dc": "eu"] }))
        return r
    }

    @Test func filtersByVersionLabelAndEndpoint() async throws {
        let s = RegistrySelector(registry: try await registry())
        let byVersion = try await distribution(s, "s", count: 200, options: SelectOptions(filters: [.version("v2")]))
        #expect(Set(byVersion.keys) == ["two-0", "two-1"])
        let byLabel = try await distribution(s, "s", count: 200, options: SelectOptions(filters: [.label("dc", "us")]))
        #expect(Set(byLabel.keys) == ["one-2", "one-3"])
        let byEndpoint = try await distribution(s, "s", count: 200, options: SelectOptions(filters: [.endpoint("B")]))
        #expect(Set(byEndpoint.keys) == ["one-0", "one-1", "one-2", "one-3"])
        let combined = try await distribution(s, "s", count: 200, options: SelectOptions(filters: [.label("dc", "eu"), .endpoint("B")]))
        #expect(Set(combined.keys) == ["one-0", "one-1"])
        await #expect(throws: SelectorError.noneAvailable("s")) {
            _ = try await s.select("s", options: SelectOptions(filters: [.version("v9")])).next()
        }
    }

    @Test func canarySplitIsWithinOnePercentOverTenThousandCalls() async throws {
        var c = SelectorConfiguration()
        c.canary = ["s": ["v1": 95, "v2": 5]]
        let s = RegistrySelector(registry: try await registry(), configuration: c)
        let counts = try await distribution(s, "s", count: 10_000)
        let v2 = counts.filter { $0.key.hasPrefix("two-") }.values.reduce(0, +)
        let v1 = counts.filter { $0.key.hasPrefix("one-") }.values.reduce(0, +)
        #expect(abs(Double(v2) / 10_000 - 0.05) <= 0.01, "v1 \(v1), v2 \(v2)")
        #expect(v1 + v2 == 10_000)
        #expect(v2 == 500, "smooth weighted round robin is exact")
        // A version filter overrides the split.
        let pinned = try await distribution(s, "s", count: 100, options: SelectOptions(filters: [.version("v2")]))
        #expect(pinned.values.reduce(0, +) == 100 && pinned.keys.allSatisfy { $0.hasPrefix("two-") })
    }

    @Test func canaryFallsBackWhenItsVersionHasNoNode() async throws {
        let s = RegistrySelector(registry: try await registry())
        let counts = try await distribution(s, "s", count: 100, options: SelectOptions(canary: ["v3": 50, "v2": 50]))
        #expect(counts.keys.allSatisfy { $0.hasPrefix("two-") }, "v3 is not registered: v2 gets all")
        let none = try await distribution(s, "s", count: 100, options: SelectOptions(filters: [.label("dc", "us")], canary: ["v2": 1]))
        #expect(none.keys.allSatisfy { $0.hasPrefix("one-") }, "v2 has no us node: the filter still holds")
    }
}

@Suite struct CanaryVersionLeavesTests {
    @Test func aVersionWhoseNodesLeftGetsNoShare() async throws {
        let r = MemoryRegistry()
        try await r.register(Service(name: "s", version: "v1", nodes: nodes(2, prefix: "one-")))
        try await r.register(Service(name: "s", version: "v2", nodes: nodes(1, prefix: "two-")))
        try await r.register(Service(name: "s", version: "v3", nodes: nodes(1, prefix: "three-")))
        var c = SelectorConfiguration()
        c.canary = ["s": ["v1": 50, "v2": 25, "v3": 25]]
        let s = RegistrySelector(registry: r, configuration: c)
        let before = try await distribution(s, "s", count: 400)
        #expect(before["two-0"] == 100 && before["three-0"] == 100)
        try await r.deregister(Service(name: "s", version: "v3", nodes: nodes(1, prefix: "three-")))
        try await Task.sleep(for: .milliseconds(100))
        let after = try await distribution(s, "s", count: 300)
        // 50:25 between the versions left.
        #expect(after["two-0"] == 100, "\(after)")
        #expect((after["one-0"] ?? 0) + (after["one-1"] ?? 0) == 200)
    }
}
