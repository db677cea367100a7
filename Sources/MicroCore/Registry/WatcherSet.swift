import Synchronization

/// The open watches of an in-process registry: fans events out to every watcher whose filter matches. For
/// registry implementations. Thread-safe (one mutex).
public final class WatcherSet: Sendable {
    private struct Entry {
        let service: String?
        let continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation
    }

    /// Guarded by its mutex.
    private let entries = Mutex<(next: UInt64, open: [UInt64: Entry])>((0, [:]))

    public init() {}

    public func add(_ options: WatchOptions) -> RegistryWatcher {
        let (stream, continuation) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
        let id = entries.withLock { e -> UInt64 in
            e.next += 1
            e.open[e.next] = Entry(service: options.service, continuation: continuation)
            return e.next
        }
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return RegistryWatcher(events: stream) { continuation.finish() }
    }

    public func publish(_ events: [RegistryEvent]) {
        guard !events.isEmpty else { return }
        let targets = entries.withLock { e in Array(e.open.values) }
        for event in events {
            for t in targets where t.service == nil || t.service == event.service.name {
                t.continuation.yield(event)
            }
        }
    }

    public func finishAll(throwing error: (any Error)? = nil) {
        let all = entries.withLock { e -> [Entry] in
            defer { e.open = [:] }
            return Array(e.open.values)
        }
        for t in all { t.continuation.finish(throwing: error) }
    }

    private func remove(_ id: UInt64) {
        _ = entries.withLock { $0.open.removeValue(forKey: id) }
    }
}
