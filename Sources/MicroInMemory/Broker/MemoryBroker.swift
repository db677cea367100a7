public import MicroCore
import Foundation
import Synchronization

/// A broker within one process: `publish` runs the subscribers' handlers directly (concurrently when several
/// get the message), with the contract of ``Broker``. For tests, and for services that publish to themselves.
public final class MemoryBroker: Broker {
    private struct Subscriber: Sendable {
        let id: String
        let queue: String?
        let handler: BrokerHandler
    }

    private struct State: ~Copyable {
        /// Subscribers by topic, in subscription order.
        var topics: [String: [Subscriber]] = [:]
        var closed = false
    }

    /// Guards the subscribers and the closed flag.
    private let state = Mutex(State())
    /// Advances per publish: which queue group member is picked. Atomic.
    private let rotation = Atomic<Int>(0)

    public init() {}

    @discardableResult
    public func publish(_ topic: String, _ message: BrokerMessage) async throws -> PublishResult {
        let subscribers = try state.withLock { s throws(BrokerError) -> [Subscriber] in
            if s.closed { throw BrokerError(.closed, "the broker is closed") }
            return s.topics[topic] ?? []
        }
        if subscribers.isEmpty { return PublishResult() }
        let plan = QueuePlan.targets(subscribers, queue: \.queue, rotation: rotation.add(1, ordering: .relaxed).oldValue)
        let tally = await DeliveryTally.run(plan) { s in
            do {
                try await s.handler(message)
                return .delivered
            } catch {
                return .failed(DeliveryFailure(subscriberID: s.id, queue: s.queue, code: .internalError, reason: "the handler threw: \(error)"))
            }
        }
        return try tally.result(topic: topic)
    }

    public func subscribe(_ topic: String, options: SubscribeOptions, handler: @escaping BrokerHandler) async throws -> Subscription {
        guard !topic.isEmpty else { throw BrokerError(.invalidTopic, "empty topic") }
        let subscriber = Subscriber(id: UUID().uuidString.lowercased(), queue: options.queue, handler: handler)
        try state.withLock { s throws(BrokerError) in
            if s.closed { throw BrokerError(.closed, "the broker is closed") }
            s.topics[topic, default: []].append(subscriber)
        }
        return Subscription(id: subscriber.id, topic: topic, options: options) { [weak self] in
            self?.state.withLock { s in
                s.topics[topic]?.removeAll { $0.id == subscriber.id }
                if s.topics[topic]?.isEmpty == true { s.topics[topic] = nil }
            }
        }
    }

    public func close() async {
        state.withLock { s in
            s.closed = true
            s.topics = [:]
        }
    }

    /// Subscriptions alive now, over all topics.
    public var subscriptionCount: Int { state.withLock { $0.topics.values.reduce(0) { $0 + $1.count } } }
}
