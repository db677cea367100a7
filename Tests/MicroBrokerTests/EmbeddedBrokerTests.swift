import MicroInMemory
import Foundation
import MicroCore
import MicroBroker
import MicroEventLoop
import MicroRegistry
import MicroTestSupport
import Testing

/// The embedded broker within one process: separate broker instances (each with its own listener) find each
/// other through a local registry directory, as processes do.
@Suite struct EmbeddedBrokerTests {
    struct Boom: Error, CustomStringConvertible { var description: String { "boom from the handler" } }

    @Test func fanOutToThreeSubscribers() async throws {
        let f = try BrokerFixture(count: 4)
        try await withTimeout(20, "fan-out") {
            let got = Recorder<String>()
            for i in 1...3 {
                _ = try await f.brokers[i].subscribe("news") { m in got.append("\(i):\(text(m.body)):\(m.header["k"] ?? "")") }
            }
            var m = message("hello")
            m.header["k"] = "v"
            let r = try await f.brokers[0].publish("news", m)
            #expect(r == PublishResult(delivered: 3, skipped: 0))
            #expect(got.all.sorted() == ["1:hello:v", "2:hello:v", "3:hello:v"])
            // Subscribers of the publishing broker itself are reached too (directly).
            _ = try await f.brokers[0].subscribe("news") { m in got.append("0:\(text(m.body)):") }
            #expect(try await f.brokers[0].publish("news", message("again")).delivered == 4)
            #expect(got.all.filter { $0.contains("again") }.count == 4)
            // Nobody subscribes to this one: the result says so.
            #expect(try await f.brokers[0].publish("silence", message("x")) == PublishResult())
        }
        await f.stop()
    }

    @Test func queueGroupDeliversEachMessageToExactlyOneMember() async throws {
        let f = try BrokerFixture(count: 4)
        try await withTimeout(60, "queue group") {
            let members = (1...3).map { _ in Recorder<String>() }
            for (i, m) in members.enumerated() {
                _ = try await f.brokers[i + 1].subscribe("jobs", queue: "workers") { msg in m.append(text(msg.body)) }
            }
            let everyone = Recorder<String>()
            _ = try await f.brokers[3].subscribe("jobs") { msg in everyone.append(text(msg.body)) }
            for i in 0..<1_000 {
                let r = try await f.brokers[0].publish("jobs", message("\(i)"))
                #expect(r.delivered == 2, "one queue member and the plain subscriber")
            }
            let all = members.flatMap(\.all)
            #expect(all.count == 1_000, "every message delivered once to the group")
            #expect(Set(all) == Set((0..<1_000).map(String.init)))
            for m in members { #expect(m.count > 250, "spread over the members: \(members.map(\.count))") }
            #expect(everyone.count == 1_000)
        }
        await f.stop()
    }

    @Test func unsubscribeStopsDelivery() async throws {
        let f = try BrokerFixture(count: 2)
        try await withTimeout(20, "unsubscribe") {
            let got = Recorder<String>()
            let sub = try await f.brokers[1].subscribe("t") { m in got.append(text(m.body)) }
            // Read before the publish that fills the publisher's cache, so that the time measured from it bounds
            // the cache's age from above.
            let cached = ContinuousClock.now
            #expect(try await f.brokers[0].publish("t", message("1")).delivered == 1)
            await sub.unsubscribe()
            #expect(f.brokers[1].subscriptionCount == 0)
            // The publisher's cache still holds the subscription: the listener refuses it, the publisher skips it.
            // (Unless the machine was so busy that the cache's 1 s passed: then it reads the registry and finds none.)
            let r = try await f.brokers[0].publish("t", message("2"))
            if cached.duration(to: .now) < .milliseconds(800) {
                #expect(r == PublishResult(delivered: 0, skipped: 1))
            } else {
                #expect(r.delivered == 0, "\(r)")
            }
            #expect(try await f.brokers[0].publish("t", message("3")) == PublishResult())
            #expect(got.all == ["1"])
            await #expect(throws: RegistryError.self) { try await f.registry.getService(EmbeddedBroker.serviceName("t")) }
        }
        await f.stop()
    }

    @Test func handlerErrorReachesThePublisher() async throws {
        let f = try BrokerFixture(count: 3)
        try await withTimeout(20, "handler error") {
            let got = Recorder<String>()
            _ = try await f.brokers[1].subscribe("t") { _ in throw Boom() }
            _ = try await f.brokers[2].subscribe("t") { m in got.append(text(m.body)) }
            do {
                try await f.brokers[0].publish("t", message("x"))
                Issue.record("the handler's error must reach the publisher")
            } catch let e as BrokerError {
                #expect(e.code == .deliveryFailed)
                #expect(e.delivered == 1)
                #expect(e.failures.count == 1)
                #expect(e.failures.first?.reason.contains("boom from the handler") == true, "\(e)")
                #expect(e.failures.first?.address == f.brokers[1].address)
            }
            #expect(got.all == ["x"], "the other subscriber still got it")
        }
        await f.stop()
    }

    @Test func deadSubscriberIsSkippedAndItsRegistrationRemoved() async throws {
        let f = try BrokerFixture(count: 2)
        try await withTimeout(20, "dead subscriber") {
            let got = Recorder<String>()
            let live = try await f.brokers[1].subscribe("t") { m in got.append(text(m.body)) }
            let queued = try await f.brokers[1].subscribe("q", queue: "g") { m in got.append("q:" + text(m.body)) }
            // Registrations left by a process that died: nothing listens at their address any more.
            let deadAddress = "127.0.0.1:\(freePort())"
            for (topic, meta) in [("t", [String: String]()), ("q", ["queue": "g"])] {
                try await f.registry.register(Service(name: EmbeddedBroker.serviceName(topic),
                                                      nodes: [Node(id: "a-dead-\(topic)", address: deadAddress, metadata: meta)]))
            }
            #expect(try await f.brokers[0].publish("t", message("1")) == PublishResult(delivered: 1, skipped: 1))
            let left = try await f.registry.getService(EmbeddedBroker.serviceName("t")).flatMap(\.nodes).map(\.id)
            #expect(left == [live.id], "the stale registration was removed")
            #expect(try await f.brokers[0].publish("t", message("2")) == PublishResult(delivered: 1, skipped: 0))
            // A dead queue member (sorted first, so picked first) is replaced by a live one.
            #expect(try await f.brokers[0].publish("q", message("3")).delivered == 1)
            #expect(try await f.brokers[0].publish("q", message("4")) == PublishResult(delivered: 1, skipped: 0))
            #expect(try await f.registry.getService(EmbeddedBroker.serviceName("q")).flatMap(\.nodes).map(\.id) == [queued.id])
            #expect(got.all == ["1", "2", "q:3", "q:4"])
        }
        await f.stop()
    }

    @Test func closeDeregistersAndRefusesUse() async throws {
        let f = try BrokerFixture(count: 1)
        try await withTimeout(20, "close") {
            _ = try await f.brokers[0].subscribe("a") { _ in }
            _ = try await f.brokers[0].subscribe("b", queue: "g") { _ in }
            #expect(try await f.registry.listServices().count == 2)
            await f.brokers[0].close()
            #expect(try await f.registry.listServices().isEmpty)
            await #expect(throws: BrokerError.self) { try await f.brokers[0].publish("a", message("x")) }
            await #expect(throws: BrokerError.self) { _ = try await f.brokers[0].subscribe("a") { _ in } }
        }
        await f.stop()
    }
}

/// A registry that counts its reads.
final class CountingRegistry: Registry {
    let base = MemoryRegistry()
    let reads = Recorder<String>()
    func register(_ service: Service, options: RegisterOptions) async throws { try await base.register(service, options: options) }
    func deregister(_ service: Service) async throws { try await base.deregister(service) }
    func getService(_ name: String) async throws -> [Service] {
        reads.append(name)
        return try await base.getService(name)
    }
    func listServices() async throws -> [Service] { try await base.listServices() }
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher { try await base.watch(options) }
}

@Suite struct SubscriberCacheTests {
    @Test func publishingReadsTheRegistryOncePerCacheTTL() async throws {
        let group = EventLoopGroup(threads: 1)
        let registry = CountingRegistry()
        var configuration = EmbeddedBrokerConfiguration()
        configuration.subscriberCacheTTL = .seconds(60)
        let subscriber = EmbeddedBroker(group: group, registry: registry, configuration: configuration)
        let publisher = EmbeddedBroker(group: group, registry: registry, configuration: configuration)
        try await withTimeout(30, "cache") {
            let got = Recorder<Int>()
            _ = try await subscriber.subscribe("busy") { _ in got.append(1) }
            for i in 0..<500 { #expect(try await publisher.publish("busy", message("\(i)")).delivered == 1) }
            #expect(got.count == 500)
            #expect(registry.reads.count == 1, "one registry read for 500 publishes: \(registry.reads.count)")
        }
        await subscriber.close()
        await publisher.close()
        #expect(group.shutdownGracefully())
    }
}
