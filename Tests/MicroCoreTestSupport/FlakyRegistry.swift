public import MicroCore
import Synchronization

/// Wraps a registry: counts reads, and can be taken down (every call fails, open watches break) and back up,
/// also onto another registry (a cluster that came back elsewhere, a client that reconnected).
public final class FlakyRegistry: Registry {
    /// Guarded by its mutex.
    private let current: Mutex<any Registry>
    private let down = Atomic<Bool>(false)
    private let reads = Atomic<Int>(0)
    private let watchers = Mutex<[RegistryWatcher]>([])

    public init(_ base: any Registry) { current = Mutex(base) }

    /// The registry calls go to when up.
    public var base: any Registry { current.withLock { $0 } }

    /// Sends calls to `registry` from now on.
    public func replaceBase(_ registry: any Registry) { current.withLock { $0 = registry } }

    public var getServiceCalls: Int { reads.load(ordering: .relaxed) }

    public func setDown(_ value: Bool) {
        down.store(value, ordering: .relaxed)
        if value {
            for w in watchers.withLock({ w in defer { w = [] }; return w }) { w.stop() }
        }
    }

    private func check() throws {
        if down.load(ordering: .relaxed) { throw RegistryError.unavailable("down for the test") }
    }

    public func register(_ service: Service, options: RegisterOptions) async throws { try check(); try await base.register(service, options: options) }
    public func deregister(_ service: Service) async throws { try check(); try await base.deregister(service) }
    public func getService(_ name: String) async throws -> [Service] {
        reads.add(1, ordering: .relaxed)
        try check()
        return try await base.getService(name)
    }
    public func listServices() async throws -> [Service] { try check(); return try await base.listServices() }
    public func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        try check()
        let w = try await base.watch(options)
        watchers.withLock { $0.append(w) }
        return w
    }
}
