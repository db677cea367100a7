/// Where services announce their nodes and clients find them (go-micro's `registry.Registry`).
///
/// Implementations: ``MemoryRegistry`` (one process), ``LocalRegistry`` (zero-config, every process of one
/// machine), ``EtcdRegistry`` (distributed). ``RegistryConfiguration`` picks one from flags and environment.
///
/// Contract: `register` adds or refreshes the service's nodes (each node separately: registering a service
/// with one node never removes its other nodes); with a TTL a node disappears when it is not registered again
/// (or, for etcd, kept alive) within the TTL. `deregister` removes the nodes given. `getService` returns one
/// `Service` per version, or throws ``RegistryError/notFound(_:)``. Not promised: ordering of nodes, or that
/// a read right after a write on another process sees it (the local registry polls; etcd reads may be
/// served by a lagging member).
public protocol Registry: Sendable {
    func register(_ service: Service, options: RegisterOptions) async throws
    func deregister(_ service: Service) async throws
    func getService(_ name: String) async throws -> [Service]
    func listServices() async throws -> [Service]
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher
}

extension Registry {
    public func register(_ service: Service) async throws {
        try await register(service, options: RegisterOptions())
    }

    public func watch() async throws -> RegistryWatcher {
        try await watch(WatchOptions())
    }
}

/// Options of ``Registry/register(_:options:)``.
public struct RegisterOptions: Sendable, Hashable {
    /// How long the registration lives without renewal; nil: until deregistered.
    public var ttl: Duration?

    public init(ttl: Duration? = nil) { self.ttl = ttl }
}

/// Options of ``Registry/watch(_:)``.
public struct WatchOptions: Sendable, Hashable {
    /// Only events of this service; nil: every service.
    public var service: String?

    public init(service: String? = nil) { self.service = service }
}

extension Service {
    /// Checks what every registry needs: a name, node ids, and names usable as keys.
    func validate() throws {
        guard !name.isEmpty else { throw RegistryError.invalid("empty service name") }
        for node in nodes where node.id.isEmpty { throw RegistryError.invalid("node without id in \(name)") }
    }

    /// The same service with only `node`.
    func with(node: Node) -> Service {
        var s = self
        s.nodes = [node]
        return s
    }
}

/// Groups single-node records into one `Service` per version (the newest metadata of a version wins).
func mergeByVersion(_ records: [Service]) -> [Service] {
    var order: [String] = []
    var byVersion: [String: Service] = [:]
    for record in records {
        if var existing = byVersion[record.version] {
            for node in record.nodes {
                if let i = existing.nodes.firstIndex(where: { $0.id == node.id }) {
                    existing.nodes[i] = node
                } else {
                    existing.nodes.append(node)
                }
            }
            byVersion[record.version] = existing
        } else {
            order.append(record.version)
            byVersion[record.version] = record
        }
    }
    return order.map { byVersion[$0]! }
}
