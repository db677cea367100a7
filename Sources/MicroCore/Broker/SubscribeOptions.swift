/// Options of ``Broker/subscribe(_:options:handler:)``.
///
/// There is no `autoAck` (go-micro has one): the acknowledgment is the handler's return, which the publisher
/// waits for, so there is nothing to acknowledge later.
public struct SubscribeOptions: Sendable, Hashable {
    /// The queue group: each message goes to one member of the group (round robin among the members a
    /// publisher knows), instead of to every subscriber. nil: every message.
    public var queue: String?

    public init(queue: String? = nil) { self.queue = queue }
}
