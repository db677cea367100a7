import MicroInMemory
import MicroCore
import MicroBroker
import Testing

@Suite struct MemoryBrokerTests {
    struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

    @Test func fanOutToEverySubscriber() async throws {
        let broker = MemoryBroker()
        let got = Recorder<String>()
        for i in 0..<3 {
            _ = try await broker.subscribe("news") { m in got.append("\(i):\(text(m.body))") }
        }
        let r = try await broker.publish("news", message("hi"))
        #expect(r == PublishResult(delivered: 3, skipped: 0))
        #expect(got.all.sorted() == ["0:hi", "1:hi", "2:hi"])
        #expect(try await broker.publish("nobody-listens", message("x")).delivered == 0)
        await broker.close()
    }

    @Test func queueGroupGetsEachMessageOnce() async throws {
        let broker = MemoryBroker()
        let members = (0..<3).map { _ in Recorder<String>() }
        let everyone = Recorder<String>()
        for m in members { _ = try await broker.subscribe("jobs", queue: "workers") { msg in m.append(text(msg.body)) } }
        _ = try await broker.subscribe("jobs") { msg in everyone.append(text(msg.body)) }
        for i in 0..<300 {
            #expect(try await broker.publish("jobs", message("\(i)")).delivered == 2)
        }
        let all = members.flatMap(\.all)
        #expect(all.count == 300)
        #expect(Set(all).count == 300)
        for m in members { #expect(m.count == 100, "round robin spreads evenly") }
        #expect(everyone.count == 300)
        await broker.close()
    }

    @Test func unsubscribeAndHandlerErrors() async throws {
        let broker = MemoryBroker()
        let got = Recorder<String>()
        let sub = try await broker.subscribe("t") { m in got.append(text(m.body)) }
        _ = try await broker.subscribe("t") { _ in throw Boom() }
        do {
            try await broker.publish("t", message("a"))
            Issue.record("a handler error must reach the publisher")
        } catch let e as BrokerError {
            #expect(e.code == .deliveryFailed)
            #expect(e.delivered == 1)
            #expect(e.failures.count == 1 && e.failures[0].reason.contains("boom"))
        }
        await sub.unsubscribe()
        await sub.unsubscribe()
        #expect(broker.subscriptionCount == 1)
        await #expect(throws: BrokerError.self) { try await broker.publish("t", message("b")) }
        #expect(got.all == ["a"])
        await broker.close()
        await #expect(throws: BrokerError.self) { try await broker.publish("t", message("c")) }
    }
}
