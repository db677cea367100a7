import Foundation
import MicroCore
import MicroBroker
import MicroTestSupport
import Testing

/// Publishes per second, printed (not asserted: the machine is shared). One publisher task, one message at a
/// time, each acknowledged before the next.
@Suite(.serialized) struct BrokerThroughputTests {
    static let count = 10_000

    func rate(_ n: Int, _ d: Duration) -> Int {
        let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        return Int(Double(n) / s)
    }

    /// Publishes `count` messages from `tasks` concurrent tasks (each waits for its acknowledgment before its next).
    func run(_ broker: EmbeddedBroker, _ topic: String, tasks: Int = 1) async throws -> Duration {
        let start = ContinuousClock.now
        let per = Self.count / tasks
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<per {
                        let r = try await broker.publish(topic, message("\(t * per + i)"))
                        #expect(r.delivered == 1)
                    }
                }
            }
            try await group.waitForAll()
        }
        return ContinuousClock.now - start
    }

    @Test func publishesPerSecond() async throws {
        let f = try BrokerFixture(count: 2)
        try await withTimeout(120, "throughput") {
            let same = Recorder<Int>()
            _ = try await f.brokers[0].subscribe("local") { _ in same.append(1) }
            let d1 = try await run(f.brokers[0], "local")
            #expect(same.count == Self.count)
            print("broker throughput: \(Self.count) publishes to a subscriber of the same broker: \(d1), \(rate(Self.count, d1))/s")

            let other = Recorder<Int>()
            _ = try await f.brokers[1].subscribe("loopback") { _ in other.append(1) }
            let d2 = try await run(f.brokers[0], "loopback")
            #expect(other.count == Self.count)
            print("broker throughput: \(Self.count) publishes to another broker in-process (loopback TCP): \(d2), \(rate(Self.count, d2))/s")
            let d2c = try await run(f.brokers[0], "loopback", tasks: 16)
            #expect(other.count == 2 * Self.count)
            print("broker throughput: \(Self.count) publishes from 16 tasks to another broker in-process (loopback TCP): \(d2c), \(rate(Self.count, d2c))/s")

            let child = try ChildProcess(microPath, ["subscribe", "child", "--count", "\(2 * Self.count)", "--timeout", "90"],
                                         environment: f.childEnvironment, logPath: f.directory + "-child.log")
            defer { child.kill() }
            let ready = await eventually(15) { child.output.contains("subscribed ") }
            #expect(ready)
            let d3 = try await run(f.brokers[0], "child")
            print("broker throughput: \(Self.count) publishes to a child-process subscriber: \(d3), \(rate(Self.count, d3))/s")
            let d3c = try await run(f.brokers[0], "child", tasks: 16)
            print("broker throughput: \(Self.count) publishes from 16 tasks to a child-process subscriber: \(d3c), \(rate(Self.count, d3c))/s")
            #expect(await child.waitForExit(seconds: 30))
            #expect(child.output.split(separator: "\n").count == 2 * Self.count + 1)
        }
        await f.stop()
    }
}
