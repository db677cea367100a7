/// Asynchronous messages by topic (go-micro's `broker.Broker`): publishers send to a topic, every subscriber of
/// the topic receives the message, except that a queue group receives each message once (one of its members).
///
/// Implementations: ``MemoryBroker`` (one process) and ``EmbeddedBroker`` (the zero-config default: every
/// process of one machine, no server to install).
///
/// Contract, common to the implementations:
/// - Delivery is at most once. `publish` returns after every chosen subscriber acknowledged the message (its
///   handler returned) or failed; there is no redelivery, no persistence, and no buffering for subscribers that
///   are not there yet: a message published to a topic without subscribers reaches nobody, which the returned
///   ``PublishResult`` says (`delivered == 0`).
/// - A subscriber's handler that throws makes `publish` throw ``BrokerError`` (code `deliveryFailed`) listing
///   each failure with the handler's error; the other subscribers still got the message
///   (``BrokerError/delivered``).
/// - Subscribers that are gone (their process or listener stopped) are skipped (``PublishResult/skipped``); for
///   a queue group another member is tried.
/// - Not promised: ordering between messages (handlers may run concurrently, also for one subscriber), or that
///   a subscription made in another process is seen by a publisher before its subscriber cache expires.
public protocol Broker: Sendable {
    /// Delivers `message` to the subscribers of `topic`; see the protocol's contract.
    @discardableResult
    func publish(_ topic: String, _ message: BrokerMessage) async throws -> PublishResult

    /// Runs `handler` for each message published to `topic` from now on, until the subscription is ended. The
    /// handler's return acknowledges the message; what it throws is returned to the publisher.
    func subscribe(_ topic: String, options: SubscribeOptions, handler: @escaping BrokerHandler) async throws -> Subscription

    /// Ends every subscription and stops serving; later calls throw ``BrokerError`` with code `closed`.
    /// Idempotent.
    func close() async
}

/// What a subscriber runs for each message. Returning acknowledges it; throwing fails its delivery.
public typealias BrokerHandler = @Sendable (BrokerMessage) async throws -> Void

extension Broker {
    /// Subscribes with default options (no queue group: every message).
    public func subscribe(_ topic: String, handler: @escaping BrokerHandler) async throws -> Subscription {
        try await subscribe(topic, options: SubscribeOptions(), handler: handler)
    }

    /// Subscribes as a member of queue group `queue`.
    public func subscribe(_ topic: String, queue: String?, handler: @escaping BrokerHandler) async throws -> Subscription {
        try await subscribe(topic, options: SubscribeOptions(queue: queue), handler: handler)
    }
}
