import Foundation
import MicroCore
import MicroRegistry
import MicroTestSupport
import Testing

/// The zero-config registry across processes: `micro registry` is the other process.
@Suite(.serialized) struct LocalRegistryTests {
    var tool: String { productsDirectory() + "/micro" }

    @Test func serviceRegisteredByAnotherProcessIsFoundAndExpiresAfterItsCrash() async throws {
        let dir = try makeTemporaryDirectory("micro-local")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = LocalRegistry(directory: dir, pollInterval: .milliseconds(50))
        let log = EventLog(try await registry.watch(WatchOptions(service: "greeter")))
        defer { log.stop() }
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = dir
        let server = try ChildProcess(tool, ["registry", "register", "greeter", "node-1", "127.0.0.1:8081", "--ttl", "1", "--hold"],
                                      environment: env, logPath: dir + "-server.log")
        #expect(await eventually(5) { (try? await registry.getService("greeter"))?.first?.nodes.first?.id == "node-1" })
        #expect(await log.waitFor(.create, node: "node-1"))
        // Alive past its TTL: it keeps registering.
        try await Task.sleep(for: .milliseconds(1300))
        #expect((try? await registry.getService("greeter")) != nil, "\(server.output)")
        server.kill()
        // No renewal after the crash: gone within the TTL (plus a poll).
        #expect(await eventually(3) { (try? await registry.getService("greeter")) == nil })
        #expect(await log.waitFor(.delete, node: "node-1"))
    }

    @Test func anotherProcessWatchesWhatThisOneRegisters() async throws {
        let dir = try makeTemporaryDirectory("micro-local")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = dir
        let watcher = try ChildProcess(tool, ["registry", "watch", "greeter", "--count", "1"], environment: env, logPath: dir + "-watch.log")
        #expect(await eventually(5) { watcher.output.contains("watching") })
        try await LocalRegistry(directory: dir).register(Service(name: "greeter", version: "v3", nodes: [Node(id: "n", address: "127.0.0.1:1")]))
        #expect(await watcher.waitForExit(seconds: 5))
        #expect(watcher.output.contains("create"))
        #expect(watcher.output.contains("\"version\":\"v3\""))
    }

    @Test func namesThatAreNotPathSafe() async throws {
        let dir = try makeTemporaryDirectory("micro-local")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = LocalRegistry(directory: dir)
        let s = Service(name: "../etc/passwd", nodes: [Node(id: "a/b c", address: "127.0.0.1:1")])
        try await r.register(s)
        #expect(try await r.getService("../etc/passwd") == [s])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains("/") && !$0.hasPrefix(".") })
    }
}
