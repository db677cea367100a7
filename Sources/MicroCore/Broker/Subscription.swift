import Synchronization

/// A subscription made by ``Broker/subscribe(_:options:handler:)``: delivery lasts until ``unsubscribe()`` or
/// the broker's close.
///
/// Not promised: that no delivery already under way when `unsubscribe()` is called still runs the handler.
public final class Subscription: Sendable {
    /// Unique, and the subscriber's node id in the registry for the embedded broker.
    public let id: String
    public let topic: String
    public let options: SubscribeOptions
    private let onUnsubscribe: @Sendable () async -> Void
    /// Set by the first `unsubscribe()`, so that later ones do nothing. Atomic.
    private let ended = Atomic<Bool>(false)

    public init(id: String, topic: String, options: SubscribeOptions, onUnsubscribe: @escaping @Sendable () async -> Void) {
        self.id = id
        self.topic = topic
        self.options = options
        self.onUnsubscribe = onUnsubscribe
    }

    /// Stops delivery to this subscription (and removes its registration). Idempotent.
    public func unsubscribe() async {
        guard !ended.exchange(true, ordering: .relaxed) else { return }
        await onUnsubscribe()
    }
}
