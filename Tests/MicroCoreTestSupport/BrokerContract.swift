public import MicroCore
import Synchronization
import Testing

/// Brokers of one implementation: `publisher` publishes, `subscribers` subscribe (for a broker that spans processes,
/// instances other than the publisher, so that deliveries cross the network; for an in-process one, the same).
public struct BrokersUnderTest: Sendable {
    public var publisher: any Broker
    public var subscribers: [any Broker]
    public var stop: @Sendable () async -> Void

    public init(publisher: any Broker, subscribers: [any Broker], stop: @escaping @Sendable () async -> Void) {
        self.publisher = publisher
        self.subscribers = subscribers
        self.stop = stop
    }
}

public typealias BrokerFactory = @Sendable () async throws -> BrokersUnderTest

/// What every broker promises (the `Broker` protocol's contract: at most once, fan-out, queue groups, errors to
/// the publisher), as checks each implementation runs: the in-memory broker and the embedded one.
public enum BrokerContract {
    public static let checks = ["fanOut", "queueGroup", "handlerErrorAndUnsubscribe", "closedRefusesUse"]

    public static func run(_ name: String, _ make: BrokerFactory) async throws {
        let b = try await make()
        try await withTimeout(seconds: 30, name) {
            switch name {
            case "fanOut": try await fanOut(b)
            case "queueGroup": try await queueGroup(b)
            case "handlerErrorAndUnsubscribe": try await handlerErrorAndUnsubscribe(b)
            case "closedRefusesUse": try await closedRefusesUse(b)
            default: Issue.record("no broker check called \(name)")
            }
        }
        await b.stop()
    }

    final class Collected: Sendable {
        private let items = Mutex<[String]>([])
        func add(_ s: String) { items.withLock { $0.append(s) } }
        var all: [String] { items.withLock { $0 } }
    }

    static func message(_ s: String, header: [String: String] = [:]) -> BrokerMessage { BrokerMessage(header: header, body: Array(s.utf8)) }
    static func text(_ m: BrokerMessage) -> String { String(decoding: m.body, as: UTF8.self) }
    static func subscriber(_ b: BrokersUnderTest, _ i: Int) -> any Broker { b.subscribers[i % b.subscribers.count] }

    /// Every subscriber without a queue group gets each message, with its header; a topic without subscribers
    /// reaches nobody, and the result says so.
    public static func fanOut(_ b: BrokersUnderTest) async throws {
        let got = Collected()
        for i in 0..<3 {
            _ = try await subscriber(b, i).subscribe("news", options: SubscribeOptions()) { m in got.add("\(i):\(text(m)):\(m.header["k"] ?? "")") }
        }
        let r = try await b.publisher.publish("news", message("hi", header: ["k": "v"]))
        #expect(r == PublishResult(delivered: 3, skipped: 0))
        #expect(got.all.sorted() == ["0:hi:v", "1:hi:v", "2:hi:v"])
        #expect(try await b.publisher.publish("nobody-listens", message("x")) == PublishResult())
    }

    /// One member of a queue group gets each message (spread evenly), besides every plain subscriber.
    public static func queueGroup(_ b: BrokersUnderTest) async throws {
        let members = (0..<3).map { _ in Collected() }
        let everyone = Collected()
        for (i, m) in members.enumerated() {
            _ = try await subscriber(b, i).subscribe("jobs", options: SubscribeOptions(queue: "workers")) { msg in m.add(text(msg)) }
        }
        _ = try await subscriber(b, 0).subscribe("jobs", options: SubscribeOptions()) { msg in everyone.add(text(msg)) }
        for i in 0..<300 {
            #expect(try await b.publisher.publish("jobs", message("\(i)")).delivered == 2)
        }
        let all = members.flatMap(\.all)
        #expect(all.count == 300)
        #expect(Set(all).count == 300, "each message to exactly one member")
        for m in members { #expect(m.all.count == 100, "round robin spreads evenly") }
        #expect(everyone.all.count == 300)
    }

    struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }

    /// A handler's error reaches the publisher (after the other deliveries completed); an unsubscribed handler
    /// gets nothing more.
    public static func handlerErrorAndUnsubscribe(_ b: BrokersUnderTest) async throws {
        let got = Collected()
        let sub = try await subscriber(b, 0).subscribe("t", options: SubscribeOptions()) { m in got.add(text(m)) }
        _ = try await subscriber(b, 1).subscribe("t", options: SubscribeOptions()) { _ in throw Boom() }
        do {
            try await b.publisher.publish("t", message("a"))
            Issue.record("a handler error must reach the publisher")
        } catch let e as BrokerError {
            #expect(e.code == .deliveryFailed)
            #expect(e.delivered == 1)
            #expect(e.failures.count == 1 && e.failures[0].reason.contains("boom"), "\(e)")
            #expect(e.failures.first?.code == .internalError)
        }
        await sub.unsubscribe()
        await sub.unsubscribe()  // idempotent
        await #expect(throws: BrokerError.self) { try await b.publisher.publish("t", message("b")) }
        #expect(got.all == ["a"])
    }

    /// A closed broker refuses to publish and to subscribe.
    public static func closedRefusesUse(_ b: BrokersUnderTest) async throws {
        await b.publisher.close()
        await #expect(throws: BrokerError.self) { try await b.publisher.publish("t", message("c")) }
        await #expect(throws: BrokerError.self) { _ = try await b.publisher.subscribe("t", options: SubscribeOptions()) { _ in } }
    }
}
