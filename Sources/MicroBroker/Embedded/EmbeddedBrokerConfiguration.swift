internal import MicroCore
public import Logging
public import MicroUVTransport

/// How an ``EmbeddedBroker`` listens, registers and delivers.
public struct EmbeddedBrokerConfiguration: Sendable {
    /// Where the listener binds (only once the process subscribes). Loopback: the broker is for one machine.
    public var listenAddress: String = "127.0.0.1:0"
    /// The address to register instead of the bound one.
    public var advertiseAddress: String?
    /// Registration TTL of a subscription: one whose process died disappears after it (publishers remove it
    /// sooner: on their first failed connect).
    public var registerTTL: Duration = .seconds(90)
    /// How often registrations are renewed; well below the TTL.
    public var registerInterval: Duration = .seconds(30)
    /// How long a publisher uses the subscribers it read from the registry for a topic before reading again.
    /// A subscription made in another process reaches this publisher's messages after at most this long
    /// (subscriptions of this broker are seen at once).
    public var subscriberCacheTTL: Duration = .seconds(1)
    /// How long one delivery may take (the handler included) before the publish reports it failed.
    public var deliveryTimeout: Duration = .seconds(30)
    /// How long `close()` lets deliveries under way finish.
    public var gracePeriod: Duration = .seconds(5)
    /// The libuv transport's settings, for the listener and for delivering.
    public var transport = UVTransportConfiguration()
    public var logger = Logger(label: "swift-micro.broker")

    public init() {}
}
