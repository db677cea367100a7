import MicroInMemory
import Foundation
import Glibc
import MicroEventLoop
import MicroRPC
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import MicroUVTransport
import Logging
import ServiceLifecycle
import Testing

/// The address a `micro serve example` child prints once it listens.
func listeningAddress(_ child: ChildProcess, seconds: Double = 15) async throws -> String {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if let line = child.output.split(separator: "\n").first(where: { $0.hasPrefix("listening ") }) {
            return String(line.split(separator: " ")[1])
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TimedOut(what: "micro serve example did not start: \(child.output)")
}

@Suite("Server lifecycle: registration, graceful stop, crashes", .serialized)
struct LifecycleTests {
    @Test("start registers the node with its endpoints; renewal keeps it past the TTL; shutdown deregisters it")
    func registration() async throws {
        let registry = CountingRegistry()
        let s = try await RunningServer.start("greeter", registry: registry, configure: {
            $0.registerTTL = .milliseconds(600)
            $0.registerInterval = .milliseconds(150)
            $0.version = "1.2.0"
            $0.nodeMetadata = ["datacenter": "eu-1"]
        }) { $0.handle("Greeter.Hello") { r, _ in Response(body: r.body) } }
        let services = try await registry.getService("greeter")
        let node = try #require(services.first?.nodes.first)
        #expect(node.address == s.address)
        #expect(node.metadata["datacenter"] == "eu-1")
        #expect(services.first?.version == "1.2.0")
        #expect(services.first?.endpoints.map(\.name).contains("Greeter.Hello") == true)
        // Renewals keep it well past its TTL: wait for them (events, not a margin), then look right after one.
        let started = ContinuousClock.now
        try await eventually(30, "renewed past the TTL") { registry.writes.count >= 5 && ContinuousClock.now - started > .milliseconds(1500) }
        let writes = registry.writes.count
        try await eventually(30, "one more renewal") { registry.writes.count > writes }
        #expect((try? await registry.getService("greeter"))?.first?.nodes.count == 1, "renewal must keep the node past its TTL")
        await s.stop()
        let after = try? await registry.getService("greeter")
        #expect(after?.flatMap(\.nodes).isEmpty ?? true)
    }

    @Test("a graceful stop loses no in-flight call; new calls go elsewhere")
    func gracefulStop() async throws {
        let registry = MemoryRegistry()
        let gate = AsyncGate()
        let s = try await RunningServer.start("work", registry: registry) { server in
            server.handle("Slow.Call") { req, _ in
                await gate.wait()
                return Response(body: req.body)
            }
        }
        let c = RunningClient.start()
        let client = c.client, address = s.address
        let calls = (0..<50).map { i in
            Task { try await client.call(Request(service: "work", endpoint: "Slow.Call", body: [UInt8(i)]), options: CallOptions(retries: 0, address: address)) }
        }
        try await eventually(10, "all in flight") { s.server.inFlightCalls == 50 }
        let server = s.server
        let stopping = Task { await server.shutdown(gracePeriod: .seconds(30)) }
        // The stop has begun (deregistered, DRAIN sent) while all 50 calls still run; then they finish.
        try await eventually(10, "stopping") { !server.isServing }
        gate.open()
        await stopping.value
        for (i, call) in calls.enumerated() {
            let r = try await withTimeout(5) { try await call.value }
            #expect(r.body == [UInt8(i)])
        }
        #expect((try? await registry.getService("work"))?.flatMap(\.nodes).isEmpty ?? true)
        do {
            _ = try await client.call(Request(service: "work", endpoint: "Slow.Call", body: []), options: CallOptions(retries: 0, address: address))
            Issue.record("a stopped server must not take calls")
        } catch let e as RPCError {
            #expect(e.code == .unavailable)
        }
        await c.stop()
        #expect(s.group.shutdownGracefully())
    }

    @Test("a server killed with SIGKILL mid-call: the caller gets an error at once, or a retry elsewhere when idempotent; its registration expires")
    func killedMidCall() async throws {
        let dir = try makeTemporaryDirectory("rpc-kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exe = productsDirectory() + "/micro"
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = dir
        let child = try ChildProcess(exe, ["serve", "example", "--server_name", "greeter", "--registry", "local", "--register_ttl", "1", "--register_interval", "0.3"],
                                     environment: env, logPath: dir + "/greeter.log")
        let address = try await listeningAddress(child)
        let registry = LocalRegistry(directory: dir, pollInterval: .milliseconds(50))
        #expect((try await registry.getService("greeter")).flatMap(\.nodes).map(\.address) == [address])

        let c = RunningClient.start()
        let client = c.client
        let target = address
        let hello = try await client.call(Request(service: "greeter", endpoint: "Greeter.Hello", contentType: ContentType.json,
                                                  body: bytes(#"{"name":"kill"}"#)), options: CallOptions(address: target))
        #expect(text(hello.body).contains("Hello, kill!"))
        // A call that will never finish on its own, then the process dies.
        let start = ContinuousClock.now
        let call = Task { try await client.call(Request(service: "greeter", endpoint: "Sleep.Call", body: bytes("10000")), options: CallOptions(retries: 0, address: target)) }
        try await Task.sleep(for: .milliseconds(200))
        child.kill()
        do {
            _ = try await withTimeout(5) { try await call.value }
            Issue.record("expected an error")
        } catch let e as RPCError {
            #expect(e.code == .unavailable)
        }
        #expect(ContinuousClock.now - start < .seconds(3), "the error must come when the connection breaks, not at a timeout")

        // With a second node and an idempotent call, the caller gets a successful retry instead.
        let other = try await RunningServer.start("greeter") { server in
            server.handle("Sleep.Call") { _, _ in Response(body: bytes("slept elsewhere")) }
        }
        let child2 = try ChildProcess(exe, ["serve", "example", "--server_name", "greeter", "--registry", "local", "--register_ttl", "1", "--register_interval", "0.3"],
                                      environment: env, logPath: dir + "/greeter2.log")
        let address2 = try await listeningAddress(child2)
        let selector = OrderedSelector([address2, other.address])
        let c2 = RunningClient.start(selector: selector)
        let client2 = c2.client
        let retried = Task { try await client2.call(Request(service: "greeter", endpoint: "Sleep.Call", body: bytes("10000")), options: CallOptions(retries: 2, idempotent: true)) }
        try await Task.sleep(for: .milliseconds(200))
        child2.kill()
        let r = try await withTimeout(5) { try await retried.value }
        #expect(text(r.body) == "slept elsewhere")

        // Both crashed nodes stop renewing: the registry forgets them after the TTL.
        try await eventually(10, "registrations expired") {
            let nodes = (try? await registry.getService("greeter"))?.flatMap(\.nodes) ?? []
            return !nodes.contains { $0.address == address || $0.address == address2 }
        }
        await c.stop()
        await c2.stop()
        await other.stop()
    }
}

@Suite("Stopping on a signal", .serialized)
struct SignalTests {
    @Test("SIGTERM: the service deregisters, finishes its in-flight call, and exits")
    func sigterm() async throws {
        let dir = try makeTemporaryDirectory("rpc-term")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = dir
        let child = try ChildProcess(productsDirectory() + "/micro", ["serve", "example", "--server_name", "term", "--registry", "local"],
                                     environment: env, logPath: dir + "/term.log")
        let address = try await listeningAddress(child)
        let registry = LocalRegistry(directory: dir, pollInterval: .milliseconds(50))
        #expect((try await registry.getService("term")).flatMap(\.nodes).count == 1)
        let c = RunningClient.start()
        let client = c.client
        let call = Task { try await client.call(Request(service: "term", endpoint: "Sleep.Call", body: bytes("500")), options: CallOptions(retries: 0, address: address)) }
        try await Task.sleep(for: .milliseconds(150))
        kill(child.pid, SIGTERM)
        let r = try await withTimeout(5) { try await call.value }
        #expect(text(r.body) == "slept", "the in-flight call finishes during the graceful stop")
        #expect(await child.waitForExit(seconds: 10), "the process exits after its graceful stop")
        #expect(child.output.contains("stopped"))
        let left = (try? await registry.getService("term"))?.flatMap(\.nodes) ?? []
        #expect(left.isEmpty, "the node deregistered")
        await c.stop()
    }
}

@Suite("Graceful stops leave no registration", .serialized)
struct StopLeavesNoRegistrationTests {
    @Test("100 SIGTERMs of servers renewing their registration every millisecond leave no node registered")
    func sigtermsWhileRenewing() async throws {
        let dir = try makeTemporaryDirectory("rpc-term-renew")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = dir
        let registry = LocalRegistry(directory: dir, pollInterval: .milliseconds(50))
        // 10 rounds of 10 servers at once: each renews every millisecond (a long TTL, so only a write after the
        // deregistration could leave a node behind), is stopped by SIGTERM while renewing, and must leave nothing.
        for round in 0..<10 {
            let name = "renewing-\(round)"
            var children: [ChildProcess] = []
            for i in 0..<10 {
                children.append(try ChildProcess(productsDirectory() + "/micro",
                                                 ["serve", "example", "--server_name", name, "--registry", "local", "--register_ttl", "600", "--register_interval", "0.001"],
                                                 environment: env, logPath: dir + "/\(name)-\(i).log"))
            }
            for child in children { _ = try await listeningAddress(child) }
            try await eventually(30, "all 10 registered") {
                ((try? await registry.getService(name))?.flatMap(\.nodes).count ?? 0) == 10
            }
            for child in children { kill(child.pid, SIGTERM) }
            for child in children {
                #expect(await child.waitForExit(seconds: 20), "the process exits after its graceful stop: \(child.output)")
            }
            let left = (try? await registry.getService(name))?.flatMap(\.nodes) ?? []
            #expect(left.isEmpty, "round \(round): \(left.count) node(s) left registered after a clean stop")
        }
    }
}

@Suite("swift-service-lifecycle", .serialized)
struct ServiceGroupTests {
    @Test("in a ServiceGroup the server starts, registers, and stops gracefully when the group shuts down")
    func serviceGroup() async throws {
        let registry = MemoryRegistry()
        let group = EventLoopGroup(threads: 1)
        let server = Server(configuration: ServerConfiguration(name: "grouped"),
                            transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)),
                            registry: registry)
        server.handle("Echo.Call") { r, _ in Response(body: r.body) }
        let serviceGroup = ServiceGroup(configuration: .init(services: [server], logger: Logger(label: "test")))
        let running = Task { try await serviceGroup.run() }
        try await eventually(30, "registered") { ((try? await registry.getService("grouped"))?.flatMap(\.nodes).count ?? 0) == 1 }
        let c = RunningClient.start()
        let r = try await c.client.call(Request(service: "grouped", endpoint: "Echo.Call", body: [3]), options: CallOptions(address: server.serviceRecord.nodes[0].address))
        #expect(r.body == [3])
        await serviceGroup.triggerGracefulShutdown()
        try await withTimeout(10) { try await running.value }
        #expect(!server.isServing)
        #expect(((try? await registry.getService("grouped"))?.flatMap(\.nodes).count ?? 0) == 0)
        await c.stop()
        #expect(group.shutdownGracefully())
    }
}

/// A memory registry that counts registrations (first writes and renewals).
final class CountingRegistry: Registry {
    let inner = MemoryRegistry()
    let writes = Counter()
    func register(_ service: MicroCore.Service, options: RegisterOptions) async throws {
        try await inner.register(service, options: options)
        writes.add()
    }
    func deregister(_ service: MicroCore.Service) async throws { try await inner.deregister(service) }
    func getService(_ name: String) async throws -> [MicroCore.Service] { try await inner.getService(name) }
    func listServices() async throws -> [MicroCore.Service] { try await inner.listServices() }
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher { try await inner.watch(options) }
}
