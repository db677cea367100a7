import Foundation
import MicroCore
import MicroBroker
import MicroRegistry
import MicroTestSupport
import Testing

/// The embedded broker between processes: `micro subscribe` and `micro publish` are the other process, both sides sharing a local
/// registry directory (MICRO_REGISTRY_DIR).
@Suite struct CrossProcessBrokerTests {
    /// Waits for the child's "subscribed" line.
    func waitSubscribed(_ child: ChildProcess) async throws {
        let ok = await eventually(15) { child.output.contains("subscribed ") }
        if !ok { throw TimedOut(what: "the child's subscription; output: \(child.output)") }
    }

    func lines(_ child: ChildProcess) -> [String] {
        child.output.split(separator: "\n").map(String.init)
    }

    @Test func childSubscribesTestPublishes() async throws {
        let f = try BrokerFixture(count: 1)
        let child = try ChildProcess(microPath, ["subscribe", "xp", "--count", "3", "--timeout", "30"], environment: f.childEnvironment,
                                     logPath: f.directory + "-child.log")
        defer { child.kill() }
        try await withTimeout(40, "child subscriber") {
            try await waitSubscribed(child)
            for i in 0..<3 {
                let r = try await f.brokers[0].publish("xp", message("m\(i)"))
                #expect(r == PublishResult(delivered: 1, skipped: 0))
            }
            #expect(await child.waitForExit(seconds: 10), "micro subscribe exits after 3 messages")
            #expect(Array(lines(child).dropFirst()) == ["m0", "m1", "m2"], "\(child.output)")
        }
        await f.stop()
    }

    @Test func childPublishesTestSubscribes() async throws {
        let f = try BrokerFixture(count: 1)
        let got = Recorder<String>()
        _ = try await f.brokers[0].subscribe("px") { m in got.append(text(m.body)) }
        let child = try ChildProcess(microPath, ["publish", "px", "hello", "--count", "5", "--raw"], environment: f.childEnvironment,
                                     logPath: f.directory + "-child.log")
        defer { child.kill() }
        try await withTimeout(40, "child publisher") {
            #expect(await child.waitForExit(seconds: 30))
            #expect(child.output.contains("published 5 to px: delivered 5, skipped 0"), "\(child.output)")
            #expect(got.all.sorted() == (0..<5).map { "hello-\($0)" })
        }
        await f.stop()
    }

    @Test func killedChildIsSkippedAndCleanedUp() async throws {
        let f = try BrokerFixture(count: 1)
        let child = try ChildProcess(microPath, ["subscribe", "gone", "--count", "100", "--timeout", "30"], environment: f.childEnvironment,
                                     logPath: f.directory + "-child.log")
        defer { child.kill() }
        try await withTimeout(40, "killed child") {
            try await waitSubscribed(child)
            #expect(try await f.brokers[0].publish("gone", message("before")).delivered == 1)
            child.kill()  // SIGKILL: its registration stays behind
            #expect(try await f.registry.getService(EmbeddedBroker.serviceName("gone")).flatMap(\.nodes).count == 1)
            // The first publish may race the dead connection's close (the kernel resets it only when we write):
            // then it is reported as a failed delivery, never as delivered. The next one finds the child gone.
            var result = try? await f.brokers[0].publish("gone", message("after"))
            if result == nil { result = try await f.brokers[0].publish("gone", message("after again")) }
            #expect(result == PublishResult(delivered: 0, skipped: 1))
            await #expect(throws: RegistryError.self) { try await f.registry.getService(EmbeddedBroker.serviceName("gone")) }
        }
        await f.stop()
    }
}
