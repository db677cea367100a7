public import MicroCore
import Synchronization

/// A registry inside one process: for tests, and for a server and its clients in the same process.
///
/// Thread-safe. TTLs are honoured: an expired node is no longer returned, and watchers see its `.delete`
/// within about 100 ms of expiry. ``shared`` is the instance ``RegistryConfiguration`` hands out for
/// `memory`, so that every part of a process sees the same services.
public final class MemoryRegistry: Registry {
    /// The process-wide instance.
    public static let shared = MemoryRegistry()

    struct Record {
        var service: Service  // exactly one node
        var expires: ContinuousClock.Instant?
    }

    struct State {
        /// service name -> node id -> record
        var services: [String: [String: Record]] = [:]
        var sweeping = false
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())
    private let watchers = WatcherSet()

    public init() {}

    public func register(_ service: Service, options: RegisterOptions) async throws {
        try service.validate()
        let expires = options.ttl.map { ContinuousClock.now + $0 }
        var events: [RegistryEvent] = []
        let startSweeper = state.withLock { s -> Bool in
            for node in service.nodes {
                let record = Record(service: service.with(node: node), expires: expires)
                let old = s.services[service.name, default: [:]].updateValue(record, forKey: node.id)
                if old == nil || old!.service != record.service {
                    events.append(RegistryEvent(kind: old == nil ? .create : .update, service: record.service))
                }
            }
            guard expires != nil, !s.sweeping else { return false }
            s.sweeping = true
            return true
        }
        watchers.publish(events)
        if startSweeper { startSweeping() }
    }

    public func deregister(_ service: Service) async throws {
        var events: [RegistryEvent] = []
        state.withLock { s in
            for node in service.nodes {
                if let old = s.services[service.name]?.removeValue(forKey: node.id) {
                    events.append(RegistryEvent(kind: .delete, service: old.service))
                }
            }
            if s.services[service.name]?.isEmpty == true { s.services[service.name] = nil }
        }
        watchers.publish(events)
    }

    public func getService(_ name: String) async throws -> [Service] {
        let now = ContinuousClock.now
        let records = state.withLock { s in
            s.services[name].map { Array($0.values).filter { $0.expires.map { $0 > now } ?? true } } ?? []
        }
        guard !records.isEmpty else { throw RegistryError.notFound(name) }
        return mergeByVersion(records.sorted { $0.service.nodes[0].id < $1.service.nodes[0].id }.map(\.service))
    }

    public func listServices() async throws -> [Service] {
        let now = ContinuousClock.now
        let records = state.withLock { s in
            s.services.values.flatMap { $0.values }.filter { $0.expires.map { $0 > now } ?? true }
        }
        let byName = Dictionary(grouping: records.map(\.service), by: \.name)
        return byName.keys.sorted().flatMap { mergeByVersion(byName[$0]!) }
    }

    public func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        watchers.add(options)
    }

    /// Removes expired nodes and tells watchers; runs while any registration has a TTL.
    private func startSweeping() {
        Task(executorPreference: BackgroundExecutor.shared) { [weak self] in
            while true {
                try? await BackgroundExecutor.shared.sleep(for: .milliseconds(100))
                guard let self, self.sweep() else { return }
            }
        }
    }

    /// Returns whether TTL records remain (the sweeper stops otherwise).
    private func sweep() -> Bool {
        let now = ContinuousClock.now
        var events: [RegistryEvent] = []
        let more = state.withLock { s -> Bool in
            var anyTTL = false
            for (name, nodes) in s.services {
                for (id, record) in nodes {
                    guard let expires = record.expires else { continue }
                    if expires <= now {
                        s.services[name]![id] = nil
                        events.append(RegistryEvent(kind: .delete, service: record.service))
                    } else {
                        anyTTL = true
                    }
                }
                if s.services[name]!.isEmpty { s.services[name] = nil }
            }
            s.sweeping = anyTTL
            return anyTTL
        }
        watchers.publish(events)
        return more
    }
}
