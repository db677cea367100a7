import Foundation
internal import Logging
public import MicroEventLoop
public import MicroCore
public import MicroRegistry
internal import MicroUVTransport
internal import MicroRPC
import Synchronization

/// The zero-config broker (go-micro's HTTP broker on this project's transport): in-process and across the
/// processes of one machine, with no broker server to install.
///
/// A process that subscribes runs one listener (the libuv transport on loopback, port chosen by the system) and
/// registers a node per subscription in the registry (default: ``LocalRegistry``, shared by the machine's
/// processes through a directory), as service ``serviceName(_:)`` with the queue group in the node's metadata,
/// with a TTL it renews. A publisher reads the topic's subscribers from the registry (cached for
/// ``EmbeddedBrokerConfiguration/subscriberCacheTTL``), picks every subscriber without a queue group and one
/// member of each group (round robin), and delivers to each with a unary call (MicroRPC's ``Client``, one attempt)
/// to its listener: service `micro.broker`, endpoint the topic, the header as metadata, the body as the message.
/// Subscriptions are kept registered by a ``Registration``, as a server's node is. Subscribers of this broker
/// instance are called directly, without the network.
///
/// A subscriber that cannot be reached (connect refused: its process is gone) or no longer has the
/// subscription is skipped, its stale registration removed, and for a queue group the next member tried. Every
/// other failure (the handler threw, the delivery timed out or its connection broke) makes `publish` throw
/// ``BrokerError`` after the other deliveries completed. See ``Broker`` for the contract (at most once).
///
/// Thread-safe. Needs an event-loop group, which the caller shuts down after ``close()``.
public final class EmbeddedBroker: Broker {
    /// The service of delivery requests.
    public static let deliveryService = "micro.broker"
    /// The node metadata key holding a subscription's queue group.
    public static let queueMetadataKey = "queue"

    /// The registry service under which `topic`'s subscriptions are registered.
    public static func serviceName(_ topic: String) -> String { "micro.broker." + topic }

    public let group: EventLoopGroup
    public let registry: any Registry
    public let configuration: EmbeddedBrokerConfiguration
    /// Delivers to other processes' listeners.
    let rpc: Client
    /// Keeps this broker's subscriptions registered.
    let registration: Registration
    let listener = BrokerListener()
    let cache: SubscriberCache
    /// Advances per publish: which queue group member is picked. Atomic.
    let rotation = Atomic<Int>(0)
    /// Set by `close()`. Atomic (read per publish without the lock).
    let closed = Atomic<Bool>(false)

    private struct State: ~Copyable {
        var server: UVServerTransport?
        /// Starting (or started) the listener: its registered address.
        var starting: Task<String, any Error>?
    }
    /// Guards the listener.
    private let state = Mutex(State())

    public init(group: EventLoopGroup, registry: any Registry = LocalRegistry(), configuration: EmbeddedBrokerConfiguration = EmbeddedBrokerConfiguration()) {
        self.group = group
        self.registry = registry
        self.configuration = configuration
        rpc = Client(transport: UVClientTransport(group: group, configuration: configuration.transport))
        registration = Registration(registry: registry, ttl: configuration.registerTTL, interval: configuration.registerInterval,
                                    logger: configuration.logger)
        cache = SubscriberCache(registry: registry, ttl: configuration.subscriberCacheTTL)
    }

    /// Where this broker's listener is reached, once a subscription started it.
    public var address: String? {
        state.withLock { s in s.server?.boundAddress.map { configuration.advertiseAddress ?? $0 } }
    }

    /// Subscriptions of this broker alive now.
    public var subscriptionCount: Int { listener.count }

    // MARK: subscribing

    public func subscribe(_ topic: String, options: SubscribeOptions, handler: @escaping BrokerHandler) async throws -> Subscription {
        try Self.validate(topic)
        let address = try await listenerAddress()
        let id = "\(Self.deliveryService)-\(UUID().uuidString.lowercased())"
        var metadata = ["topic": topic]
        if let q = options.queue { metadata[Self.queueMetadataKey] = q }
        let record = Service(name: Self.serviceName(topic), nodes: [Node(id: id, address: address, metadata: metadata)])
        // In the table before the registry, so that a publisher that finds the registration finds the handler.
        listener.add(id, BrokerListener.Local(topic: topic, queue: options.queue, handler: handler))
        let kept: Bool
        do {
            kept = try await registration.add(id, record)
        } catch {
            listener.remove(id)
            throw BrokerError(.registryUnavailable, "registering the subscription to \(topic): \(error)")
        }
        if !kept || closed.load(ordering: .relaxed) {
            await registration.remove(id)
            listener.remove(id)
            throw BrokerError(.closed, "the broker was closed while subscribing")
        }
        cache.invalidate(topic)
        return Subscription(id: id, topic: topic, options: options) { [weak self] in await self?.unsubscribe(id, topic: topic) }
    }

    private func unsubscribe(_ id: String, topic: String) async {
        guard registration.records[id] != nil else { return }
        // Out of the registry first, then out of the table: once this returns, a publisher still holding the
        // registration gets a NACK (it skips the subscriber and drops the registration).
        await registration.remove(id)
        listener.remove(id)
        cache.invalidate(topic)
    }

    /// Starts the listener on first use (and the renewal of registrations); its address.
    private func listenerAddress() async throws -> String {
        let task = try state.withLock { s throws(BrokerError) -> Task<String, any Error> in
            if closed.load(ordering: .relaxed) { throw BrokerError(.closed, "the broker is closed") }
            if let t = s.starting { return t }
            let socketAddress: SocketAddress
            do { socketAddress = try SocketAddress(configuration.listenAddress) } catch {
                throw BrokerError(.listenFailed, "bad listen address \(configuration.listenAddress): \(error)")
            }
            let server = UVServerTransport(group: group, address: socketAddress, configuration: configuration.transport)
            s.server = server
            let listener = self.listener
            let advertise = configuration.advertiseAddress
            let t = Task<String, any Error> {
                try await server.serve(listener)
                guard let bound = server.boundAddress else { throw BrokerError(.listenFailed, "the listener has no address") }
                return advertise ?? bound
            }
            s.starting = t
            return t
        }
        do {
            return try await task.value
        } catch {
            state.withLock { s in
                s.starting = nil
                s.server = nil
            }
            throw BrokerError(.listenFailed, "starting the broker listener on \(configuration.listenAddress): \(error)")
        }
    }

    // MARK: closing

    public func close() async {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        let (server, starting) = state.withLock { s in (s.server, s.starting) }
        await registration.close()
        listener.removeAll()
        if let starting { _ = try? await starting.value }
        await server?.drain(gracePeriod: configuration.gracePeriod)
        await rpc.transport.shutdown()
    }

    static func validate(_ topic: String) throws(BrokerError) {
        guard !topic.isEmpty else { throw BrokerError(.invalidTopic, "empty topic") }
        guard topic.utf8.count < 0xFFFF - 64 else { throw BrokerError(.invalidTopic, "topic longer than the wire allows") }
    }
}
