public import MicroCore
import Foundation
import MicroHTTP
import Synchronization

/// One watch of a key prefix: a long-lived streaming POST to `/v3/watch` whose newline-delimited JSON
/// messages become ``RegistryEvent``s.
///
/// The watcher keeps what it knows of each key. When the stream breaks (a member died, etcd restarted, the
/// history it needed was compacted) it reports `.interrupted`, reconnects to the next endpoint, backing off,
/// reads the prefix again and reports the difference from what it knew as events, then `.resynced`, and watches
/// on from that read's revision plus one. So a consumer's view ends up right whatever happened meanwhile, even if etcd came back without its
/// data; what it does not see is a key that came and went entirely while it was disconnected. It runs on
/// ``BackgroundExecutor``, so a program whose tasks hold every thread of the shared pool still sees its
/// registry. Thread-safe.
final class EtcdWatcher: Sendable {
    let client: EtcdClient
    let prefix: String
    let registryPrefix: String
    let backoffFirst: Duration
    let backoffMax: Duration

    struct State {
        var task: Task<Void, Never>?
        var current: HTTPStreamingResponse?
        var stopped = false
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())

    init(client: EtcdClient, prefix: String, registryPrefix: String, backoffFirst: Duration, backoffMax: Duration) {
        self.client = client
        self.prefix = prefix
        self.registryPrefix = registryPrefix
        self.backoffFirst = backoffFirst
        self.backoffMax = backoffMax
    }

    /// Reads the prefix and opens the first stream (throwing when no endpoint answers), then keeps watching in
    /// the background. Keys present at the start are not reported.
    func start() async throws -> RegistryWatcher {
        var view = EtcdWatchView(registryPrefix: registryPrefix)
        _ = view.resync(try await readPrefix())
        let first = try await open(from: view.nextRevision)
        let (events, continuation) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
        let task = Task(executorPreference: BackgroundExecutor.shared) { [self, view] in
            await run(first: first, view: view, continuation: continuation)
        }
        state.withLock { $0.task = task }
        continuation.onTermination = { [self] _ in stop() }
        return RegistryWatcher(events: events) { [self] in
            stop()
            continuation.finish()
        }
    }

    func stop() {
        let (task, current) = state.withLock { s in
            s.stopped = true
            return (s.task, s.current)
        }
        current?.cancel()
        task?.cancel()
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    /// Reads every key under the prefix (for ``EtcdWatchView/resync(_:)``).
    private func readPrefix() async throws -> (revision: Int64, records: [EtcdRecord]) {
        let request = EtcdRangeRequest(key: prefix.base64, range_end: prefixRangeEnd(prefix), serializable: true)
        return try await client.call("/v3/kv/range", request, decode: EtcdAnswer.range)
    }

    private func open(from revision: Int64) async throws -> HTTPStreamingResponse {
        let create = EtcdWatchCreate(create_request: .init(
            key: prefix.base64, range_end: prefixRangeEnd(prefix),
            start_revision: EtcdInt(revision), prev_kv: true))
        let response = try await client.stream("/v3/watch", create)
        let stopped = state.withLock { s -> Bool in
            if !s.stopped { s.current = response }
            return s.stopped
        }
        if stopped {
            response.cancel()
            throw CancellationError()
        }
        return response
    }

    private func run(first: HTTPStreamingResponse, view: EtcdWatchView,
                     continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation) async {
        var stream: HTTPStreamingResponse? = first
        var view = view
        var failures = 0
        while !isStopped {
            if stream == nil {
                do {
                    for event in view.resync(try await readPrefix()) { continuation.yield(event) }
                    stream = try await open(from: view.nextRevision)
                    continuation.yield(.resynced)
                } catch {
                    failures += 1
                    try? await BackgroundExecutor.shared.sleep(for: delay(failures))
                    continue
                }
            }
            var lines = EtcdWatchLines()
            var restart = false
            do {
                for try await chunk in stream!.body {
                    let goOn = lines.feed(chunk) { line in
                        guard let update = view.apply(line) else { return true }
                        if update.created { failures = 0 }
                        for event in update.events { continuation.yield(event) }
                        return update.goOn
                    }
                    if !goOn {
                        restart = true
                        break
                    }
                }
            } catch {
                // Broken or cancelled: start again below unless stopped.
            }
            stream?.cancel()
            stream = nil
            if isStopped { break }
            continuation.yield(.interrupted)
            if !restart { client.avoidCurrentEndpoint() }
            failures += 1
            try? await BackgroundExecutor.shared.sleep(for: delay(failures))
        }
        continuation.finish()
    }

    private func delay(_ failures: Int) -> Duration {
        var d = backoffFirst
        for _ in 1..<max(1, failures) where d < backoffMax { d *= 2 }
        return min(d, backoffMax)
    }
}

/// Splits etcd's watch stream into its newline-terminated messages, wherever the chunks cut them.
///
/// Not API: `@_spi(Fuzzing)`, public only for the fuzz targets (Fuzz/FuzzEtcdJSON).
@_spi(Fuzzing) public struct EtcdWatchLines: Sendable {
    private var line: [UInt8] = []

    public init() {}

    /// The bytes of the unfinished line.
    public var pendingByteCount: Int { line.count }

    /// Hands each line that `chunk` completes (without its newline) to `onLine`, in order; keeps an unfinished one
    /// for the next chunk. When `onLine` returns false, stops there and returns false (the rest is not kept).
    public mutating func feed(_ chunk: [UInt8], _ onLine: ([UInt8]) -> Bool) -> Bool {
        var start = chunk.startIndex
        while let newline = chunk[start...].firstIndex(of: 10) {
            line += chunk[start..<newline]
            start = newline + 1
            let goOn = onLine(line)
            line.removeAll(keepingCapacity: true)
            if !goOn { return false }
        }
        line += chunk[start...]
        return true
    }
}

/// What a watch knows of the keys under its prefix, and what etcd's range answers and watch messages change in it.
///
/// Not API: `@_spi(Fuzzing)`, public only for the fuzz targets (Fuzz/FuzzEtcdJSON).
@_spi(Fuzzing) public struct EtcdWatchView: Sendable {
    /// What the watch knows of one key.
    public struct Known: Sendable, Hashable {
        public var createRevision: Int64
        public var service: Service
    }

    /// One watch message's effect.
    public struct Update: Sendable {
        /// The changes to report, in order.
        public var events: [RegistryEvent]
        /// etcd confirmed the watch.
        public var created: Bool
        /// False when the watch must start over (etcd cancelled it, e.g. because the revision it needed was
        /// compacted); the message's events are then not applied.
        public var goOn: Bool
    }

    /// Key -> what the watch knows of it.
    public private(set) var known: [String: Known] = [:]
    /// The revision to watch from: one past the last one seen.
    public private(set) var nextRevision: Int64 = 1
    /// The registry's key prefix (`<prefix><service>/<node id>`), for deletes that come without their value.
    public let registryPrefix: String

    public init(registryPrefix: String) {
        self.registryPrefix = registryPrefix
    }

    /// Takes a range answer (``EtcdAnswer/range(_:)``) as what is there now and watches on from its revision
    /// plus one. Returns the differences from what was known before, as events.
    public mutating func resync(_ range: (revision: Int64, records: [EtcdRecord])) -> [RegistryEvent] {
        var now: [String: Known] = [:]
        for record in range.records {
            now[record.key] = Known(createRevision: record.createRevision, service: record.service)
        }
        var events: [RegistryEvent] = []
        for (key, entry) in now {
            if let old = known[key] {
                if old.service != entry.service { events.append(RegistryEvent(kind: .update, service: entry.service)) }
            } else {
                events.append(RegistryEvent(kind: .create, service: entry.service))
            }
        }
        for (key, entry) in known where now[key] == nil {
            events.append(RegistryEvent(kind: .delete, service: entry.service))
        }
        known = now
        nextRevision = Self.after(range.revision)
        return events
    }

    /// One line of the watch stream: nil when it is not a watch message (it is skipped), else its effect.
    public mutating func apply(_ line: [UInt8]) -> Update? {
        guard let message = try? JSONDecoder().decode(EtcdWatchMessage.self, from: Data(line)) else { return nil }
        let created = message.result?.created == true
        guard let result = message.result else { return Update(events: [], created: created, goOn: message.error == nil) }
        if result.canceled == true || (result.compact_revision?.value ?? 0) > 0 {
            return Update(events: [], created: created, goOn: false)
        }
        var events: [RegistryEvent] = []
        for event in result.events ?? [] {
            guard let kv = event.kv else { continue }
            let key = kv.keyText
            if let revision = kv.mod_revision?.value { nextRevision = Self.after(revision) }
            if event.type == "DELETE" {
                let service = known.removeValue(forKey: key)?.service
                    ?? event.prev_kv?.valueData.flatMap { try? JSONDecoder().decode(Service.self, from: $0) }
                    ?? serviceFromKey(key)
                if let service { events.append(RegistryEvent(kind: .delete, service: service)) }
            } else if let data = kv.valueData, let service = try? JSONDecoder().decode(Service.self, from: data) {
                let kind: RegistryEvent.Kind = known[key] == nil ? .create : .update
                known[key] = Known(createRevision: kv.create_revision?.value ?? 0, service: service)
                events.append(RegistryEvent(kind: kind, service: service))
            }
        }
        return Update(events: events, created: created, goOn: true)
    }

    /// The revision after `revision`. etcd never reaches Int64.max, but whatever answers on its port may send it:
    /// the watch then goes on from there rather than trapping.
    static func after(_ revision: Int64) -> Int64 {
        revision == .max ? .max : revision + 1
    }

    /// A service with only a name and a node id, from `<prefix><service>/<node id>` (a delete without its
    /// previous value).
    private func serviceFromKey(_ key: String) -> Service? {
        guard key.hasPrefix(registryPrefix) else { return nil }
        let parts = key.dropFirst(registryPrefix.count).split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        return Service(name: unescapeKeyComponent(parts[0]), version: "", nodes: [Node(id: unescapeKeyComponent(parts[1]), address: "")])
    }
}
