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
