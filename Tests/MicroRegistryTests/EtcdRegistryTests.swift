import Foundation
import MicroCore
import MicroRegistry
import MicroTestSupport
import Testing

/// Against real etcd-server processes on free loopback ports (installed by scripts/install-deps).
@Suite(.serialized) struct EtcdRegistryTests {
    func makeRegistry(_ endpoints: [String]) throws -> EtcdRegistry {
        var c = EtcdConfiguration(endpoints: endpoints)
        c.requestTimeout = .milliseconds(1500)
        c.prefix = "/micro-test-\(UUID().uuidString.prefix(8))/"
        return try EtcdRegistry(configuration: c)
    }

    func node(_ id: String, version: String = "v1") -> Service {
        Service(name: "greeter", version: version, endpoints: [Endpoint(name: "Greeter.Hello")],
                nodes: [Node(id: id, address: "127.0.0.1:7\(id.count)00", metadata: ["dc": "eu"])])
    }

    func ids(_ r: EtcdRegistry) async -> Set<String> {
        Set(((try? await r.getService("greeter")) ?? []).flatMap(\.nodes).map(\.id))
    }

    @Test func contractTTLKeepAliveAndWatch() async throws {
        let etcd = try await EtcdCluster(size: 1)
        defer { etcd.stop() }
        let r = try makeRegistry(etcd.endpoints)
        let log = EventLog(try await r.watch(WatchOptions(service: "greeter")))
        try await r.register(node("a"), options: RegisterOptions(ttl: .seconds(3)))
        try await r.register(node("b", version: "v2"))
        #expect(await log.waitFor(.create, node: "a"))
        #expect(await log.waitFor(.create, node: "b"))
        let services = try await r.getService("greeter")
        #expect(Set(services.map(\.version)) == ["v1", "v2"])
        #expect(services.first { $0.version == "v1" }?.nodes == node("a").nodes)
        #expect(try await r.listServices().map(\.name) == ["greeter", "greeter"])
        // Kept alive well past the TTL (3 s: keep-alives still arrive in time on a busy machine).
        try await Task.sleep(for: .seconds(7))
        #expect(await ids(r) == ["a", "b"])
        var updated = node("a")
        updated.nodes[0].metadata["dc"] = "us"
        try await r.register(updated, options: RegisterOptions(ttl: .seconds(3)))
        #expect(await log.waitFor(.update, node: "a"))
        try await r.deregister(node("a"))
        #expect(await log.waitFor(.delete, node: "a"))
        #expect(await ids(r) == ["b"])
        log.stop()
        await r.close()
    }

    @Test func crashedProcessExpiresWithItsLease() async throws {
        let etcd = try await EtcdCluster(size: 1)
        defer { etcd.stop() }
        let r = try makeRegistry(etcd.endpoints)
        let log = EventLog(try await r.watch(WatchOptions(service: "greeter")))
        let server = try ChildProcess(productsDirectory() + "/micro",
                                      ["registry", "register", "--registry", "etcd", "--registry_address", etcd.endpoints[0],
                                       "greeter", "crashing", "127.0.0.1:7001", "--ttl", "1", "--hold"],
                                      logPath: etcd.directory + "/child.log")
        // The child uses the default prefix.
        let defaultPrefix = try EtcdRegistry(configuration: EtcdConfiguration(endpoints: etcd.endpoints))
        let defaultLog = EventLog(try await defaultPrefix.watch(WatchOptions(service: "greeter")))
        #expect(await eventually(5) { (try? await defaultPrefix.getService("greeter"))?.first?.nodes.first?.id == "crashing" }, "\(server.output)")
        try await Task.sleep(for: .milliseconds(1500))
        #expect((try? await defaultPrefix.getService("greeter")) != nil, "kept alive by the child")
        server.kill()
        let killedAt = ContinuousClock.now
        #expect(await defaultLog.waitFor(.delete, node: "crashing", seconds: 5))
        #expect(ContinuousClock.now - killedAt < .seconds(4))
        await #expect(throws: RegistryError.notFound("greeter")) { try await defaultPrefix.getService("greeter") }
        #expect(log.all.isEmpty, "another prefix sees nothing")
        log.stop()
        defaultLog.stop()
        await r.close()
        await defaultPrefix.close()
    }

    @Test func survivesEtcdRestartsAndReRegistersWhenEtcdLostItsData() async throws {
        let etcd = try await EtcdCluster(size: 1)
        defer { etcd.stop() }
        let r = try makeRegistry(etcd.endpoints)
        let log = EventLog(try await r.watch(WatchOptions(service: "greeter")))
        try await r.register(node("a"), options: RegisterOptions(ttl: .seconds(1)))
        #expect(await log.waitFor(.create, node: "a"))

        // A plain restart: the data survives; the watch resumes and sees what happens next.
        etcd.kill(0)
        await #expect(throws: RegistryError.self) { try await r.getService("greeter") }
        try etcd.start(0)
        try await etcd.waitHealthy(0)
        #expect(await eventually(5) { await ids(r) == ["a"] })
        try await r.register(node("b"), options: RegisterOptions(ttl: .seconds(1)))
        #expect(await log.waitFor(.create, node: "b"))
        // The break was reported: `.interrupted`, then `.resynced` once the watch was live again.
        let kinds = log.all.map(\.kind)
        #expect(kinds.contains(.interrupted))
        #expect(kinds.lastIndex(of: .resynced).map { $0 > kinds.firstIndex(of: .interrupted)! } == true)

        // Etcd comes back empty: the keep-alive finds its leases gone and registers both nodes again.
        etcd.kill(0)
        try await Task.sleep(for: .milliseconds(300))
        try etcd.start(0, wipe: true)
        try await etcd.waitHealthy(0)
        #expect(await eventually(8) { await ids(r) == ["a", "b"] })
        // The watch is on the new cluster's history: it reports what happens there.
        try await r.register(node("c"), options: RegisterOptions(ttl: .seconds(1)))
        #expect(await log.waitFor(.create, node: "c", seconds: 8), "\(log.all.map { "\($0.kind) \($0.service.nodes.map(\.id))" })")
        try await r.deregister(node("c"))
        #expect(await log.waitFor(.delete, node: "c"))
        // And it keeps them alive.
        try await Task.sleep(for: .milliseconds(2000))
        #expect(await ids(r) == ["a", "b"])
        // Etcd was empty for a moment, so the watch may have reported a and b leaving; its last word is that they are
        // there.
        let last = Dictionary(log.all.filter { !$0.service.nodes.isEmpty }.map { ($0.service.nodes[0].id, $0.kind) },
                              uniquingKeysWith: { _, later in later })
        #expect(last["a"] != .delete && last["b"] != .delete, "\(log.all.map { "\($0.kind) \($0.service.nodes.map(\.id))" })")
        log.stop()
        await r.close()
    }

    @Test func threeMemberClusterKeepsWorkingWithOneMemberKilled() async throws {
        let etcd = try await EtcdCluster(size: 3)
        defer { etcd.stop() }
        let r = try makeRegistry(etcd.endpoints)
        let log = EventLog(try await r.watch(WatchOptions(service: "greeter")))
        try await r.register(node("a"), options: RegisterOptions(ttl: .seconds(2)))
        #expect(await log.waitFor(.create, node: "a"))
        // The member the registry talks to first goes away.
        etcd.kill(0)
        try await r.register(node("b"), options: RegisterOptions(ttl: .seconds(2)))
        #expect(await ids(r) == ["a", "b"])
        #expect(await log.waitFor(.create, node: "b", seconds: 8), "the watch moved to another member")
        // Leases are renewed through the surviving members.
        try await Task.sleep(for: .milliseconds(3000))
        #expect(await ids(r) == ["a", "b"])
        try await r.deregister(node("a"))
        #expect(await log.waitFor(.delete, node: "a"))
        log.stop()
        await r.close()
    }

    @Test func unreachableEtcdIsUnavailableWithinTheDeadline() async throws {
        var c = EtcdConfiguration(endpoints: ["127.0.0.1:\(freePort())"])
        c.requestTimeout = .milliseconds(500)
        let r = try EtcdRegistry(configuration: c)
        let start = ContinuousClock.now
        await #expect {
            try await r.getService("greeter")
        } throws: { error in
            if case RegistryError.unavailable = error { return true } else { return false }
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        await r.close()
    }
}
