import Foundation
import MicroCore
import MicroCoreTestSupport
import MicroRegistry
import MicroRPC
import MicroSelector
import Synchronization
import Testing

@Suite("Registry outages", .serialized)
struct RegistryOutageTests {
    static func etcdConfiguration(_ endpoints: [String], prefix: String) -> EtcdConfiguration {
        var c = EtcdConfiguration(endpoints: endpoints)
        c.requestTimeout = .milliseconds(1000)
        c.prefix = prefix
        c.reconnectBackoffMax = .milliseconds(300)
        return c
    }

    @Test("etcd wiped and restarted empty while the servers are kept away from it: calls keep succeeding on the last-known nodes")
    func etcdLosesItsData() async throws {
        let etcd = try await EtcdCluster(size: 1)
        defer { etcd.stop() }
        let prefix = "/micro-outage-\(UUID().uuidString.prefix(8))/"
        // The servers reach etcd through a switch: down, they are kept away from it.
        let serverRegistry = FlakyRegistry(try EtcdRegistry(configuration: Self.etcdConfiguration(etcd.endpoints, prefix: prefix)))
        var servers: [RunningServer] = []
        for _ in 0..<2 {
            servers.append(try await RunningServer.start("wiped", registry: serverRegistry, configure: {
                $0.registerTTL = .seconds(5)
                $0.registerInterval = .milliseconds(300)
            }) { s in
                s.handle("Echo.Call") { r, _ in Response(body: r.body) }
            })
        }
        let clientRegistry = try EtcdRegistry(configuration: Self.etcdConfiguration(etcd.endpoints, prefix: prefix))
        let selector = RegistrySelector(registry: clientRegistry)
        let c = RunningClient.start(selector: selector)
        let request = Request(service: "wiped", endpoint: "Echo.Call", body: [5])
        try await eventually(10, "both nodes registered and selected") {
            ((try? await clientRegistry.getService("wiped"))?.flatMap(\.nodes).count ?? 0) == 2
        }
        _ = try await c.client.call(request)

        // Callers keep calling throughout, each call with a short deadline (shorter than the time the servers stay
        // away after etcd is back, so waiting for a node would not hide an emptied cache).
        let stop = Counter()
        let succeeded = Counter()
        let failures = Recorder<String>()
        let callers = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while stop.count == 0 {
                            do {
                                _ = try await c.client.call(request, options: CallOptions(timeout: .seconds(1)))
                                succeeded.add()
                            } catch {
                                failures.append("\(error)")
                            }
                            // Steady, not flat out: this test is about outcomes, not load.
                            try? await BackgroundExecutor.shared.sleep(for: .milliseconds(1))
                        }
                    }
                }
            }
        }

        // The servers lose etcd (their keep-alives stop), and etcd comes back without its data.
        serverRegistry.setDown(true)
        if let old = serverRegistry.base as? EtcdRegistry { await old.close() }
        etcd.kill(0)
        try await eventually(10, "the selector sees the watch break") { !selector.isWatching }
        try etcd.start(0, wipe: true)
        try await etcd.waitHealthy(0)
        #expect(((try? await clientRegistry.getService("wiped"))?.flatMap(\.nodes).count ?? 0) == 0, "etcd came back empty")
        try await eventually(15, "the selector watches the new cluster") { selector.isWatching }
        // The servers stay away for 3 s more (longer than a call's deadline): calls go on to the last-known nodes.
        let before = succeeded.count
        try await BackgroundExecutor.shared.sleep(for: .seconds(3))
        #expect(succeeded.count > before, "calls succeeded while etcd was empty")

        // The servers reach etcd again and register anew.
        serverRegistry.replaceBase(try EtcdRegistry(configuration: Self.etcdConfiguration(etcd.endpoints, prefix: prefix)))
        serverRegistry.setDown(false)
        try await eventually(10, "both nodes registered again") {
            ((try? await clientRegistry.getService("wiped"))?.flatMap(\.nodes).count ?? 0) == 2
        }
        stop.add()
        await callers.value
        #expect(failures.all.isEmpty, "\(failures.count) failed calls, e.g. \(failures.all.prefix(3))")
        print("etcd wiped: \(succeeded.count) calls succeeded, \(failures.count) failed")

        for s in servers { await s.stop() }
        await c.stop()
        selector.close()
        await clientRegistry.close()
        if let r = serverRegistry.base as? EtcdRegistry { await r.close() }
    }
}
