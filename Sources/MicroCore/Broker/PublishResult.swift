/// What ``Broker/publish(_:_:)`` did with a message.
public struct PublishResult: Sendable, Hashable {
    /// Deliveries acknowledged: subscribers without a queue group, plus queue groups (each counts once).
    public var delivered: Int
    /// Subscribers found gone (stopped listener, unknown subscription) and skipped; their stale registrations
    /// were removed. A queue group member skipped this way was replaced by another member when there was one.
    public var skipped: Int

    public init(delivered: Int = 0, skipped: Int = 0) {
        self.delivered = delivered
        self.skipped = skipped
    }
}
