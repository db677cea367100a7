import MicroInMemory
import Foundation
import MicroCore
import MicroRegistry
import MicroTestSupport
import Testing

/// The contract every registry keeps, run against the in-process ones (etcd's run in EtcdRegistryTests).
enum Kind: String, CaseIterable, Sendable { case memory, local }

func makeRegistry(_ kind: Kind) throws -> any Registry {
    switch kind {
    case .memory: MemoryRegistry()
    case .local: LocalRegistry(directory: try makeTemporaryDirectory("micro-reg"), pollInterval: .milliseconds(50))
    }
}

func greeter(_ version: String = "v1", _ ids: String..., meta: [String: String] = [:]) -> Service {
    Service(name: "greeter", version: version, metadata: ["team": "a"], endpoints: [Endpoint(name: "Greeter.Hello")],
            nodes: ids.map { Node(id: $0, address: "127.0.0.1:9\($0.count)00", metadata: meta) })
}

@Suite struct RegistryContractTests {
    @Test(arguments: Kind.allCases)
    func registerGetListDeregister(kind: Kind) async throws {
        let r = try makeRegistry(kind)
        try await r.register(greeter("v1", "a", "b"))
        try await r.register(greeter("v2", "c"))
        try await r.register(Service(name: "other", nodes: [Node(id: "o", address: "127.0.0.1:1")]))
        let services = try await r.getService("greeter")
        #expect(services.count == 2)
        #expect(Set(services.flatMap(\.nodes).map(\.id)) == ["a", "b", "c"])
        #expect(services.first { $0.version == "v1" }?.endpoints == [Endpoint(name: "Greeter.Hello")])
        #expect(Set(try await r.listServices().map(\.name)) == ["greeter", "other"])
        try await r.deregister(greeter("v1", "a"))
        #expect(Set(try await r.getService("greeter").flatMap(\.nodes).map(\.id)) == ["b", "c"])
        try await r.deregister(greeter("v1", "b"))
        try await r.deregister(greeter("v2", "c"))
        await #expect(throws: RegistryError.notFound("greeter")) { try await r.getService("greeter") }
    }

    @Test(arguments: Kind.allCases)
    func ttlExpires(kind: Kind) async throws {
        let r = try makeRegistry(kind)
        try await r.register(greeter("v1", "short"), options: RegisterOptions(ttl: .milliseconds(300)))
        try await r.register(greeter("v1", "forever"))
        #expect(try await r.getService("greeter")[0].nodes.count == 2)
        try await Task.sleep(for: .milliseconds(450))
        #expect(try await r.getService("greeter")[0].nodes.map(\.id) == ["forever"])
    }

    @Test(arguments: Kind.allCases)
    func watchSeesCreateUpdateDeleteAndExpiry(kind: Kind) async throws {
        let r = try makeRegistry(kind)
        let all = EventLog(try await r.watch())
        let others = EventLog(try await r.watch(WatchOptions(service: "other")))
        defer { all.stop(); others.stop() }
        try await r.register(greeter("v1", "a"))
        #expect(await all.waitFor(.create, node: "a"))
        try await r.register(greeter("v1", "a", meta: ["dc": "eu"]))
        #expect(await all.waitFor(.update, node: "a"))
        try await r.deregister(greeter("v1", "a"))
        #expect(await all.waitFor(.delete, node: "a"))
        // A polling registry reports only what lived across a poll: a TTL well above the poll, seen created, then expired.
        try await r.register(greeter("v1", "t"), options: RegisterOptions(ttl: .seconds(2)))
        #expect(await all.waitFor(.create, node: "t", seconds: 15))
        #expect(await all.waitFor(.delete, node: "t", seconds: 15))
        #expect(others.all.isEmpty)
    }

    @Test(arguments: Kind.allCases)
    func stoppedWatcherEnds(kind: Kind) async throws {
        let r = try makeRegistry(kind)
        let log = EventLog(try await r.watch())
        log.stop()
        #expect(await eventually(2) { log.isEnded })
    }

    @Test(arguments: Kind.allCases)
    func invalidRegistrations(kind: Kind) async throws {
        let r = try makeRegistry(kind)
        await #expect(throws: RegistryError.self) { try await r.register(Service(name: "", nodes: [Node(id: "x", address: "a:1")])) }
        await #expect(throws: RegistryError.self) { try await r.register(Service(name: "s", nodes: [Node(id: "", address: "a:1")])) }
    }
}
