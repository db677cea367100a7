public import Logging
public import MicroCore
import Synchronization

/// Keeps records in a registry while they are wanted: each record added is registered with a TTL and renewed at
/// an interval (a process that dies stops renewing, and its records expire), until it is removed or the
/// registration is closed. What a ``Server`` does for its node and the embedded broker for its subscriptions.
///
/// Promised: once ``close()`` returned, no renewal writes any record again (it waits for the renewal task to end
/// before deregistering). After ``remove(_:)``, a renewal that had already begun writing the record may write it
/// once more, and then removes it again at once. Not promised: that a failed deregistration is retried (the TTL
/// expires the record).
///
/// Thread-safe (one mutex).
public final class Registration: Sendable {
    public let registry: any Registry
    public let ttl: Duration
    public let interval: Duration
    let logger: Logger

    private struct State: ~Copyable {
        var records: [String: Service] = [:]
        var renewal: Task<Void, Never>?
        var closed = false
    }
    /// Guarded by its mutex.
    private let state = Mutex(State())

    public init(registry: any Registry, ttl: Duration, interval: Duration, logger: Logger = Logger(label: "swift-micro.registration")) {
        self.registry = registry
        self.ttl = ttl
        self.interval = interval
        self.logger = logger
    }

    /// The records kept now, by id.
    public var records: [String: Service] { state.withLock { $0.records } }

    /// Registers `record` under `id` and keeps it renewed. Returns false (and leaves nothing registered) when the
    /// registration was closed meanwhile; throws what the registry threw for the first write.
    @discardableResult
    public func add(_ id: String, _ record: Service) async throws -> Bool {
        if state.withLock({ $0.closed }) { return false }
        try await registry.register(record, options: RegisterOptions(ttl: ttl))
        let kept = state.withLock { s -> Bool in
            if s.closed { return false }
            s.records[id] = record
            if s.renewal == nil { s.renewal = startRenewal() }
            return true
        }
        if !kept { await deregister(record) }
        return kept
    }

    /// Stops renewing `id` and deregisters it.
    public func remove(_ id: String) async {
        guard let record = state.withLock({ $0.records.removeValue(forKey: id) }) else { return }
        await deregister(record)
    }

    /// Stops renewing (waiting for a renewal under way to end) and deregisters every record. Idempotent.
    public func close() async {
        let (renewal, records) = state.withLock { s -> (Task<Void, Never>?, [Service]) in
            s.closed = true
            defer {
                s.records = [:]
                s.renewal = nil
            }
            return (s.renewal, Array(s.records.values))
        }
        renewal?.cancel()
        await renewal?.value
        for record in records { await deregister(record) }
    }

    private func deregister(_ record: Service) async {
        do {
            try await registry.deregister(record)
        } catch {
            logger.warning("deregistering failed (the TTL will expire it)", metadata: ["service": "\(record.name)", "error": "\(error)"])
        }
    }

    private func startRenewal() -> Task<Void, Never> {
        Task(executorPreference: BackgroundExecutor.shared) { [weak self, interval] in
            while !Task.isCancelled {
                do { try await BackgroundExecutor.shared.sleep(for: interval) } catch { return }
                guard let self else { return }
                for (id, record) in self.records {
                    if Task.isCancelled { return }
                    // Removed since the snapshot: not written again.
                    if self.state.withLock({ $0.records[id] == nil }) { continue }
                    do {
                        try await self.registry.register(record, options: RegisterOptions(ttl: self.ttl))
                    } catch {
                        self.logger.warning("renewing a registration failed", metadata: ["service": "\(record.name)", "error": "\(error)"])
                    }
                    // Removed while renewing: take back what was just written.
                    if self.state.withLock({ $0.records[id] == nil }) { await self.deregister(record) }
                }
            }
        }
    }
}
