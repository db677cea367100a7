import Foundation
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Testing

/// The selector's cache fed by a real etcd: warm path without lookups, stale while etcd is down, fresh again after.
@Suite(.serialized) struct SelectorOverEtcdTests {
    @Test func cacheServesThroughAnEtcdOutageAndCatchesUpAfter() async throws {
        let etcd = try await EtcdCluster(size: 1)
        defer { etcd.stop() }
        var c = EtcdConfiguration(endpoints: etcd.endpoints)
        c.requestTimeout = .milliseconds(1000)
        c.prefix = "/micro-selector-test-\(UUID().uuidString.prefix(8))/"
        c.reconnectBackoffMax = .milliseconds(300)
        let registry = try EtcdRegistry(configuration: c)
        try await registry.register(Service(name: "s", nodes: nodes(2)), options: RegisterOptions(ttl: .seconds(10)))
        var config = SelectorConfiguration()
        config.strategy = .roundRobin
        let selector = RegistrySelector(registry: registry, configuration: config)
        #expect(try await distribution(selector, "s", count: 1000) == ["n0": 500, "n1": 500])
        #expect(selector.registryLookups == 1)

        // etcd goes away: the cache keeps serving.
        etcd.kill(0)
        #expect(try await distribution(selector, "s", count: 1000) == ["n0": 500, "n1": 500])

        // etcd comes back; a node arrives and one leaves: the watch resumes and the cache follows, still without
        // a lookup per call.
        try etcd.start(0)
        try await etcd.waitHealthy(0)
        try await registry.register(Service(name: "s", nodes: [Node(id: "late", address: "127.0.0.1:3")]), options: RegisterOptions(ttl: .seconds(10)))
        try await registry.deregister(Service(name: "s", nodes: [nodes(2)[0]]))
        #expect(await eventually(8) { (try? await distribution(selector, "s", count: 10))?.keys.sorted() == ["late", "n1"] })
        // One read when cold, one when the watch was live again after the break: none per call.
        #expect(selector.registryLookups == 2)
        selector.close()
        await registry.close()
    }
}
