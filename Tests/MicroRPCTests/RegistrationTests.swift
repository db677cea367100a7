import MicroCore
import MicroInMemory
import MicroRPC
import Testing

/// A registry whose writes take a while, so that renewals are often under way when a registration closes.
final class SlowRegistry: Registry {
    let inner = MemoryRegistry()
    let writes = Counter()
    func register(_ service: Service, options: RegisterOptions) async throws {
        try await Task.sleep(for: .milliseconds(2))
        try await inner.register(service, options: options)
        writes.add()
    }
    func deregister(_ service: Service) async throws { try await inner.deregister(service) }
    func getService(_ name: String) async throws -> [Service] { try await inner.getService(name) }
    func listServices() async throws -> [Service] { try await inner.listServices() }
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher { try await inner.watch(options) }
}

@Suite("Registration")
struct RegistrationTests {
    static func nodes(_ registry: any Registry, _ name: String) async -> Int {
        ((try? await registry.getService(name)) ?? []).reduce(0) { $0 + $1.nodes.count }
    }

    @Test("once close() returned, no renewal writes the record back (renewing every millisecond, 40 times)")
    func closeWaitsForRenewal() async throws {
        for i in 0..<40 {
            let registry = SlowRegistry()
            let registration = Registration(registry: registry, ttl: .seconds(60), interval: .milliseconds(1))
            let record = Service(name: "svc", nodes: [Node(id: "n\(i)", address: "127.0.0.1:1")])
            #expect(try await registration.add("n\(i)", record))
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...6)))
            await registration.close()
            #expect(await Self.nodes(registry, "svc") == 0, "run \(i): deregistered")
            try await Task.sleep(for: .milliseconds(5))
            #expect(await Self.nodes(registry, "svc") == 0, "run \(i): nothing written back after close")
            #expect(try await !registration.add("late", record), "closed: adds nothing")
            #expect(await Self.nodes(registry, "svc") == 0)
        }
    }

    @Test("records are renewed until removed; a removed record stays removed")
    func renewAndRemove() async throws {
        let registry = SlowRegistry()
        let registration = Registration(registry: registry, ttl: .seconds(60), interval: .milliseconds(5))
        try await registration.add("a", Service(name: "svc", nodes: [Node(id: "a", address: "127.0.0.1:1")]))
        try await registration.add("b", Service(name: "svc", nodes: [Node(id: "b", address: "127.0.0.1:2")]))
        try await eventually(10, "renewed twice") { registry.writes.count >= 6 }
        await registration.remove("a")
        let after = registry.writes.count
        try await eventually(10, "two more rounds") { registry.writes.count >= after + 2 }
        let left = try await registry.getService("svc").flatMap(\.nodes).map(\.id)
        #expect(left == ["b"])
        await registration.close()
        #expect(await Self.nodes(registry, "svc") == 0)
    }
}
