public import MicroCore
public import Logging
import CoreMetrics
import Synchronization

/// The default ``Selector``: services cached from a ``Registry`` and kept fresh by its watch.
///
/// The first `select` of a service reads it from the registry (one lookup, counted in ``registryLookups``) and
/// opens one watch of all services if none is open yet; every later `select` is served from the cache without
/// touching the registry. When the watch breaks (registry outage: the watch ends, or reports `.interrupted`),
/// the cache keeps serving what it knew and holds deletions; once the watch is back, every cached service is
/// read again and applied by the stale-on-error rule (``SelectorConfiguration/Cache/staleShare``): a read that
/// would remove most of a service's nodes keeps them, marked stale, while calls to them succeed. A service the
/// registry does not know is cached as empty (its `next()` throws ``SelectorError/noneAvailable(_:)``, and its
/// `waitForChange` returns when the watch reports a node).
///
/// The watch runs on ``BackgroundExecutor``, so the cache stays current while the program's tasks hold every
/// thread of the shared pool.
///
/// Not promised: that a select right after a registration elsewhere sees the new node before the watch event
/// arrives.
public final class RegistrySelector: Selector {
    public let registry: any Registry
    public let configuration: SelectorConfiguration
    /// Where ejections and breaks in the registry's watch are logged.
    public let logger: Logger

    /// Cached services by name. Guarded by its mutex (held for a dictionary lookup only).
    private let pools = Mutex<[String: ServicePool]>([:])
    private let lookups = Atomic<Int>(0)
    private let refreshes = Atomic<Int>(0)

    struct WatchState {
        /// Opens the first watch; every cold select awaits it, so no event between a read and the watch is lost.
        var starter: Task<Void, Never>?
        var consumer: Task<Void, Never>?
        var watcher: RegistryWatcher?
        var healthy = false
        var closed = false
    }

    /// Guarded by its mutex.
    private let watchState = Mutex(WatchState())

    public init(registry: any Registry, configuration: SelectorConfiguration = SelectorConfiguration(),
                logger: Logger = Logger(label: "swift-micro.selector")) {
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
    }

    /// How many times this selector has read a service from the registry (cold selects and refreshes after a
    /// broken watch). Zero growth on the warm path.
    public var registryLookups: Int { lookups.load(ordering: .relaxed) }

    /// How many times this selector finished reading every cached service again after a break in the watch
    /// (and applied what it read by the stale-on-error rule; a service whose read failed counts as done).
    public var refreshCount: Int { refreshes.load(ordering: .relaxed) }

    /// Whether the registry's watch is open (false during an outage: the cache is then possibly stale).
    public var isWatching: Bool { watchState.withLock { $0.healthy } }

    /// Stops the watch. Selects keep working from the cache; services not cached yet are still read. Until
    /// closed, the watch task keeps the selector alive: call this when done with it.
    public func close() {
        let (watcher, consumer) = watchState.withLock { s in
            s.closed = true
            s.healthy = false
            return (s.watcher, s.consumer)
        }
        watcher?.stop()
        consumer?.cancel()
    }

    public func select(_ service: String, options: SelectOptions) async throws -> Next {
        if let next = selectCached(service, options: options) { return next }
        let pool = try await cachedPool(service)
        return PoolNext(pool: pool, strategy: options.strategy ?? configuration.strategy, filters: options.filters,
                    canary: options.canary ?? configuration.canary[service])
    }

    /// The warm path without `async`: a ``Next`` when the service is cached, nil when it is not (then call
    /// ``select(_:options:)``, which reads it). Never touches the registry.
    public func selectCached(_ service: String, options: SelectOptions = SelectOptions()) -> Next? {
        guard let pool = pools.withLock({ $0[service] }) else { return nil }
        return PoolNext(pool: pool, strategy: options.strategy ?? configuration.strategy, filters: options.filters,
                    canary: options.canary ?? configuration.canary[service])
    }

    public func mark(_ service: String, node: Node, outcome: Outcome) {
        guard let pool = pools.withLock({ $0[service] }) else { return }
        let ejected = pool.state.withLock { state in
            let before = state.ejected
            state.mark(node.id, outcome: outcome)
            return state.ejected > before
        }
        if ejected { pool.reportEjection(node, outcome: outcome) }
    }

    public func reset(_ service: String) {
        guard let pool = pools.withLock({ $0[service] }) else { return }
        pool.state.withLock { $0.reset() }
    }

    // MARK: - Cache

    private func cachedPool(_ service: String) async throws -> ServicePool {
        if let pool = pools.withLock({ $0[service] }) { return pool }
        await startWatching()
        let services = try await read(service)
        let pool = ServicePool(name: service, services: services, configuration: configuration, logger: logger)
        return pools.withLock { p in
            if let existing = p[service] { return existing }
            p[service] = pool
            return pool
        }
    }

    /// The service from the registry; a service it does not know is empty.
    private func read(_ service: String) async throws -> [Service] {
        lookups.add(1, ordering: .relaxed)
        do {
            return try await registry.getService(service)
        } catch RegistryError.notFound {
            return []
        }
    }

    private func startWatching() async {
        let starter = watchState.withLock { s -> Task<Void, Never> in
            if let starter = s.starter { return starter }
            let task = Task(executorPreference: BackgroundExecutor.shared) { await self.openFirstWatch() }
            s.starter = task
            return task
        }
        await starter.value
    }

    private func openFirstWatch() async {
        let watcher = try? await registry.watch(WatchOptions())
        let consumer = Task(executorPreference: BackgroundExecutor.shared) { await self.consume(first: watcher) }
        watchState.withLock { s in
            s.consumer = consumer
            s.watcher = watcher
            s.healthy = watcher != nil && !s.closed
        }
    }

    /// Applies events while the watch lasts; reopens it when it ends, then reads every cached service again. A
    /// watch that reports `.interrupted` (etcd's reconnects on its own) is broken until `.resynced`: deletions
    /// meanwhile are held, and the services are read again at `.resynced`.
    private func consume(first: RegistryWatcher?) async {
        var watcher = first
        var failures = 0
        while !Task.isCancelled && !watchState.withLock({ $0.closed }) {
            if let current = watcher {
                var interrupted = false
                // Deletions reported during a break, by service: judged at `.resynced` against a fresh read, or,
                // when that read fails, by the stale rule on their own.
                var held: [String: Set<String>] = [:]
                do {
                    for try await event in current {
                        switch event.kind {
                        case .interrupted:
                            if !interrupted { logger.warning("registry watch interrupted; serving cached nodes, deletions held") }
                            interrupted = true
                            watchState.withLock { $0.healthy = false }
                        case .resynced:
                            logger.notice("registry watch resynced; reading every cached service again")
                            interrupted = false
                            watchState.withLock { $0.healthy = !$0.closed }
                            await refreshAll(held: held)
                            held = [:]
                        case .delete where interrupted:
                            held[event.service.name, default: []].formUnion(event.service.nodes.map(\.id))
                        default:
                            apply(event)
                        }
                    }
                } catch {
                    // Broken: fall through to reopen.
                }
                if !watchState.withLock({ $0.closed }) { logger.warning("registry watch ended; reopening it, serving cached nodes meanwhile") }
                watchState.withLock { $0.healthy = false }
                watcher = nil
                continue
            }
            failures += 1
            try? await BackgroundExecutor.shared.sleep(for: retryDelay(failures))
            guard !watchState.withLock({ $0.closed }) else { break }
            guard let reopened = try? await registry.watch(WatchOptions()) else { continue }
            logger.notice("registry watch reopened after \(failures) attempt(s); reading every cached service again")
            failures = 0
            watcher = reopened
            let stopped = watchState.withLock { s -> Bool in
                s.watcher = reopened
                s.healthy = !s.closed
                return s.closed
            }
            if stopped {
                reopened.stop()
                break
            }
            await refreshAll()
        }
    }

    private func retryDelay(_ failures: Int) -> Duration {
        var d = configuration.cache.retryFirst
        for _ in 1..<max(1, failures) where d < configuration.cache.retryMax { d *= 2 }
        return min(d, configuration.cache.retryMax)
    }

    /// Reads every cached service again (after the watch was down) and applies it by the stale-on-error rule. A
    /// failed read keeps the cached copy, less the deletions `held` during the break, judged by the same rule.
    private func refreshAll(held: [String: Set<String>] = [:]) async {
        let all = pools.withLock { Array($0.values) }
        for pool in all {
            guard let services = try? await read(pool.name) else {
                if let gone = held[pool.name] { pool.state.withLock { $0.resync(removing: gone, now: monotonicNanoseconds()) } }
                continue
            }
            pool.update { $0.resync(with: services, now: monotonicNanoseconds()) }
        }
        refreshes.add(1, ordering: .relaxed)
    }

    private func apply(_ event: RegistryEvent) {
        guard let pool = pools.withLock({ $0[event.service.name] }) else { return }
        if event.kind == .delete {
            pool.state.withLock { $0.apply(event) }
        } else {
            pool.update { $0.apply(event) }
        }
    }
}
