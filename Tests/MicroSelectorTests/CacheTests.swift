import MicroInMemory
import MicroCore
import MicroCoreTestSupport
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Testing

@Suite struct CacheTests {
    @Test func noRegistryLookupAfterWarmUpInTenThousandCalls() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(5)))
        let s = RegistrySelector(registry: registry)
        _ = try await distribution(s, "s", count: 1)
        let warm = registry.getServiceCalls
        #expect(warm == 1)
        _ = try await distribution(s, "s", count: 10_000)
        #expect(registry.getServiceCalls == warm, "lookups during 10,000 calls: \(registry.getServiceCalls - warm)")
        #expect(s.registryLookups == 1)
        s.close()
    }

    @Test func synchronousWarmPath() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        let s = RegistrySelector(registry: registry)
        #expect(s.selectCached("s") == nil)
        _ = try await s.select("s")
        let next = try #require(s.selectCached("s", options: SelectOptions(strategy: .roundRobin)))
        #expect(Set([try next.next().id, try next.next().id]) == ["n0", "n1"])
        #expect(registry.getServiceCalls == 1)
        s.close()
    }

    @Test func watchKeepsTheCacheFresh() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        let s = RegistrySelector(registry: registry)
        _ = try await distribution(s, "s", count: 2)
        try await registry.register(Service(name: "s", nodes: [Node(id: "late", address: "127.0.0.1:1")]))
        #expect(await eventually(20) { (try? await distribution(s, "s", count: 3))?["late"] != nil })
        try await registry.deregister(Service(name: "s", nodes: nodes(2)))
        #expect(await eventually(20) { (try? await distribution(s, "s", count: 3)) == ["late": 3] })
        #expect(registry.getServiceCalls == 1)
        s.close()
    }

    @Test func unknownServiceIsCachedEmptyAndFilledByTheWatch() async throws {
        let registry = FlakyRegistry()
        let s = RegistrySelector(registry: registry)
        await #expect(throws: SelectorError.noneAvailable("s")) { _ = try await s.select("s").next() }
        await #expect(throws: SelectorError.noneAvailable("s")) { _ = try await s.select("s").next() }
        #expect(registry.getServiceCalls == 1)
        try await registry.register(Service(name: "s", nodes: nodes(1)))
        #expect(await eventually(20) { (try? await s.select("s").next()) != nil })
        s.close()
    }

    @Test func staleOnErrorThenRefreshWhenTheRegistryReturns() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.cache.retryFirst = .milliseconds(20)
        c.cache.retryMax = .milliseconds(50)
        let s = RegistrySelector(registry: registry, configuration: c)
        _ = try await distribution(s, "s", count: 2)
        #expect(s.isWatching)
        registry.setDown(true)
        #expect(await eventually(20) { !s.isWatching })
        // Outage: keeps serving what it knew.
        #expect(try await distribution(s, "s", count: 100) == ["n0": 50, "n1": 50])
        // Meanwhile a node leaves and another comes (the selector cannot see it yet).
        try await registry.base.deregister(Service(name: "s", nodes: [nodes(2)[0]]))
        try await registry.base.register(Service(name: "s", nodes: [Node(id: "new", address: "127.0.0.1:2")]))
        #expect(try await distribution(s, "s", count: 10).keys.sorted() == ["n0", "n1"])
        // A service never cached cannot be read during the outage.
        await #expect(throws: RegistryError.self) { _ = try await s.select("other") }
        registry.setDown(false)
        #expect(await eventually(3) { s.isWatching })
        #expect(await eventually(20) { (try? await distribution(s, "s", count: 10))?.keys.sorted() == ["n1", "new"] })
        s.close()
    }

    @Test func concurrentSelectsFromManyTasks() async throws {
        let registry = MemoryRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(8)))
        var c = SelectorConfiguration()
        c.strategy = .leastOutstanding
        let s = RegistrySelector(registry: registry, configuration: c)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<2000 {
                        let node = try await s.select("s").next()
                        s.mark("s", node: node, outcome: .success(latency: .microseconds(10)))
                    }
                    return 2000
                }
            }
            var total = 0
            for try await n in group { total += n }
            #expect(total == 16_000)
        }
        s.close()
    }
}
