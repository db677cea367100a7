internal import MicroCore
internal import MicroRegistry
import Synchronization

/// The subscribers of each topic as last read from the registry, so that publishing does not read the registry
/// (a directory scan for the local registry) per message.
///
/// An entry is fresh for the TTL; when it expires the first publisher reads again while the others keep using
/// the stale list, so a busy topic costs one registry read per TTL. Topics are never evicted (a process
/// publishes to few topics).
final class SubscriberCache: Sendable {
    struct Entry {
        /// Sorted by id, so that queue-group rotation walks a stable order.
        var nodes: [Node]
        var fetched: ContinuousClock.Instant
        var refreshing: Bool
    }

    let registry: any Registry
    let ttl: Duration
    /// Entries by topic. Guarded by its mutex.
    private let entries = Mutex<[String: Entry]>([:])

    init(registry: any Registry, ttl: Duration) {
        self.registry = registry
        self.ttl = ttl
    }

    /// The subscribers of `topic`: cached, or read from the registry when missing or expired.
    func nodes(_ topic: String) async throws(BrokerError) -> [Node] {
        let now = ContinuousClock.now
        let cached = entries.withLock { e -> [Node]? in
            guard var entry = e[topic] else { return nil }
            if entry.refreshing || now < entry.fetched + ttl { return entry.nodes }
            entry.refreshing = true
            e[topic] = entry
            return nil
        }
        if let cached { return cached }
        let nodes: [Node]
        do {
            nodes = try await registry.getService(EmbeddedBroker.serviceName(topic)).flatMap(\.nodes).sorted { $0.id < $1.id }
        } catch RegistryError.notFound {
            nodes = []
        } catch {
            entries.withLock { $0[topic]?.refreshing = false }
            throw BrokerError(.registryUnavailable, "reading the subscribers of \(topic): \(error)")
        }
        entries.withLock { $0[topic] = Entry(nodes: nodes, fetched: .now, refreshing: false) }
        return nodes
    }

    /// Forgets `topic`, so that the next publish reads the registry (a subscription of this process changed).
    func invalidate(_ topic: String) {
        entries.withLock { _ = $0.removeValue(forKey: topic) }
    }

    /// Drops one subscriber found gone.
    func remove(_ topic: String, nodeID: String) {
        entries.withLock { $0[topic]?.nodes.removeAll { $0.id == nodeID } }
    }
}
