public import MicroCore
import Synchronization
import Testing

/// A registry of one implementation, fresh (nothing registered), and how to stop what backs it.
public struct RegistryUnderTest: Sendable {
    public var registry: any Registry
    public var stop: @Sendable () async -> Void
    /// For registries that keep TTL registrations alive themselves (etcd's leases): another client of the same
    /// store, and how to make it stop renewing (as its process dying would). Nil: `registry` never renews.
    public var renewingWriter: (@Sendable () async throws -> (registry: any Registry, stopRenewing: @Sendable () async -> Void))?

    public init(registry: any Registry, stop: @escaping @Sendable () async -> Void = {},
                renewingWriter: (@Sendable () async throws -> (registry: any Registry, stopRenewing: @Sendable () async -> Void))? = nil) {
        self.registry = registry
        self.stop = stop
        self.renewingWriter = renewingWriter
    }

    /// Registers `service` with `ttl` so that nothing renews it afterwards.
    func registerUnrenewed(_ service: Service, ttl: Duration) async throws {
        guard let renewingWriter else {
            try await registry.register(service, options: RegisterOptions(ttl: ttl))
            return
        }
        let (writer, stopRenewing) = try await renewingWriter()
        try await writer.register(service, options: RegisterOptions(ttl: ttl))
        await stopRenewing()
    }
}

public typealias RegistryFactory = @Sendable () async throws -> RegistryUnderTest

/// What every registry promises (the `Registry` protocol's contract), as checks each implementation runs with a
/// factory of its own: the in-memory registry, the local one and etcd.
public enum RegistryContract {
    public static let checks = ["registerGetListDeregister", "ttlExpires", "watch", "stoppedWatcherEnds", "invalidRegistrations"]

    public static func run(_ name: String, _ make: RegistryFactory) async throws {
        let r = try await make()
        switch name {
        case "registerGetListDeregister": try await registerGetListDeregister(r.registry)
        case "ttlExpires": try await ttlExpires(r)
        case "watch": try await watch(r)
        case "stoppedWatcherEnds": try await stoppedWatcherEnds(r.registry)
        case "invalidRegistrations": await invalidRegistrations(r.registry)
        default: Issue.record("no registry check called \(name)")
        }
        await r.stop()
    }

    static func greeter(_ version: String = "v1", _ ids: String..., meta: [String: String] = [:]) -> Service {
        Service(name: "greeter", version: version, metadata: ["team": "a"], endpoints: [Endpoint(name: "Greeter.Hello")],
                nodes: ids.map { Node(id: $0, address: "127.0.0.1:9\($0.count)00", metadata: meta) })
    }

    static func nodeIDs(_ r: any Registry, _ name: String) async -> Set<String> {
        Set(((try? await r.getService(name)) ?? []).flatMap(\.nodes).map(\.id))
    }

    /// Register several nodes and versions, read them back by service and in the list, deregister node by node.
    public static func registerGetListDeregister(_ r: any Registry) async throws {
        try await r.register(greeter("v1", "a", "b"))
        try await r.register(greeter("v2", "c"))
        try await r.register(Service(name: "other", nodes: [Node(id: "o", address: "127.0.0.1:1")]))
        let services = try await r.getService("greeter")
        #expect(services.count == 2)
        #expect(Set(services.flatMap(\.nodes).map(\.id)) == ["a", "b", "c"])
        #expect(services.first { $0.version == "v1" }?.endpoints == [Endpoint(name: "Greeter.Hello")])
        #expect(Set(try await r.listServices().map(\.name)) == ["greeter", "other"])
        try await r.deregister(greeter("v1", "a"))
        #expect(await nodeIDs(r, "greeter") == ["b", "c"])
        try await r.deregister(greeter("v1", "b"))
        try await r.deregister(greeter("v2", "c"))
        await #expect(throws: RegistryError.notFound("greeter")) { try await r.getService("greeter") }
    }

    /// A node registered with a TTL and not renewed (for etcd: its client stopped keeping the lease alive)
    /// disappears; one without a TTL stays.
    public static func ttlExpires(_ t: RegistryUnderTest) async throws {
        let r = t.registry
        // A TTL long enough to see the node before it expires, also on a busy machine.
        let registeredAt = ContinuousClock.now
        try await t.registerUnrenewed(greeter("v1", "short"), ttl: .seconds(3))
        try await r.register(greeter("v1", "forever"))
        let seen = await nodeIDs(r, "greeter")
        // Both, unless the machine was so busy that the TTL passed before the read (then the expiry below is the check).
        if registeredAt.duration(to: .now) < .milliseconds(2500) {
            #expect(seen == ["short", "forever"])
        } else {
            #expect(seen.contains("forever"), "\(seen)")
        }
        var gone = false
        let deadline = ContinuousClock.now + .seconds(15)
        while !gone && ContinuousClock.now < deadline {
            gone = await nodeIDs(r, "greeter") == ["forever"]
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "the node with a TTL expired")
    }

    /// A watcher sees create, update, delete and expiry; a watcher of another service sees none of them.
    public static func watch(_ t: RegistryUnderTest) async throws {
        let r = t.registry
        let all = WatchLog(try await r.watch())
        let others = WatchLog(try await r.watch(WatchOptions(service: "other")))
        defer { all.stop(); others.stop() }
        try await r.register(greeter("v1", "a"))
        #expect(await all.waitFor(.create, node: "a"))
        try await r.register(greeter("v1", "a", meta: ["dc": "eu"]))
        #expect(await all.waitFor(.update, node: "a"))
        try await r.deregister(greeter("v1", "a"))
        #expect(await all.waitFor(.delete, node: "a"))
        // A polling registry reports only what lived across a poll: a TTL well above it, seen, then expired.
        try await t.registerUnrenewed(greeter("v1", "t"), ttl: .seconds(2))
        #expect(await all.waitFor(.create, node: "t"))
        #expect(await all.waitFor(.delete, node: "t"))
        #expect(others.events.isEmpty)
    }

    /// Stopping a watcher ends its iteration.
    public static func stoppedWatcherEnds(_ r: any Registry) async throws {
        let log = WatchLog(try await r.watch())
        log.stop()
        #expect(await eventually(seconds: 10) { log.isEnded })
    }

    /// No service name, or a node without id: refused.
    public static func invalidRegistrations(_ r: any Registry) async {
        await #expect(throws: RegistryError.self) { try await r.register(Service(name: "", nodes: [Node(id: "x", address: "a:1")])) }
        await #expect(throws: RegistryError.self) { try await r.register(Service(name: "s", nodes: [Node(id: "", address: "a:1")])) }
    }
}

/// Collects a watcher's events in the background, so that checks wait for them with a deadline.
public final class WatchLog: Sendable {
    private let collected = Mutex<[RegistryEvent]>([])
    private let ended = Mutex<Bool>(false)
    public let watcher: RegistryWatcher

    public init(_ watcher: RegistryWatcher) {
        self.watcher = watcher
        Task { [self] in
            do {
                for try await event in watcher { collected.withLock { $0.append(event) } }
            } catch {}
            ended.withLock { $0 = true }
        }
    }

    public var events: [RegistryEvent] { collected.withLock { $0 } }
    public var isEnded: Bool { ended.withLock { $0 } }

    /// Waits (up to 15 s) for an event of `kind` about node `nodeID`.
    public func waitFor(_ kind: RegistryEvent.Kind, node nodeID: String) async -> Bool {
        await eventually(seconds: 15) { self.events.contains { $0.kind == kind && $0.service.nodes.contains { $0.id == nodeID } } }
    }

    public func stop() { watcher.stop() }
}
