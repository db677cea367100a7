internal import MicroCore
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

    /// What the watcher knows of one key.
    struct Known {
        var createRevision: Int64
        var service: Service
    }

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
        var known: [String: Known] = [:]
        let revision = try await resync(&known, emit: nil)
        let first = try await open(from: revision + 1)
        let (events, continuation) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
        let task = Task(executorPreference: BackgroundExecutor.shared) { [self, known] in
            await run(first: first, known: known, nextRevision: revision + 1, continuation: continuation)
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

    /// Reads every key under the prefix, reports the differences from `known` to `emit` and updates it.
    /// Returns the revision of the read.
    private func resync(_ known: inout [String: Known],
                        emit: AsyncThrowingStream<RegistryEvent, any Error>.Continuation?) async throws -> Int64 {
        let request = EtcdRangeRequest(key: prefix.base64, range_end: prefixRangeEnd(prefix), serializable: true)
        let response = try await client.call("/v3/kv/range", request, as: EtcdRangeResponse.self)
        var now: [String: Known] = [:]
        for kv in response.kvs ?? [] {
            guard let data = kv.valueData, let service = try? JSONDecoder().decode(Service.self, from: data) else { continue }
            now[kv.keyText] = Known(createRevision: kv.create_revision?.value ?? 0, service: service)
        }
        if let emit {
            for (key, entry) in now {
                if let old = known[key] {
                    if old.service != entry.service { emit.yield(RegistryEvent(kind: .update, service: entry.service)) }
                } else {
                    emit.yield(RegistryEvent(kind: .create, service: entry.service))
                }
            }
            for (key, entry) in known where now[key] == nil {
                emit.yield(RegistryEvent(kind: .delete, service: entry.service))
            }
        }
        known = now
        return response.header?.revision?.value ?? 0
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

    private func run(first: HTTPStreamingResponse, known: [String: Known], nextRevision: Int64,
                     continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation) async {
        var stream: HTTPStreamingResponse? = first
        var known = known
        var nextRevision = nextRevision
        var failures = 0
        while !isStopped {
            if stream == nil {
                do {
                    nextRevision = try await resync(&known, emit: continuation) + 1
                    stream = try await open(from: nextRevision)
                    continuation.yield(.resynced)
                } catch {
                    failures += 1
                    try? await BackgroundExecutor.shared.sleep(for: delay(failures))
                    continue
                }
            }
            var line: [UInt8] = []
            var restart = false
            do {
                read: for try await chunk in stream!.body {
                    for byte in chunk {
                        guard byte == 10 else {
                            line.append(byte)
                            continue
                        }
                        defer { line.removeAll(keepingCapacity: true) }
                        guard let message = try? JSONDecoder().decode(EtcdWatchMessage.self, from: Data(line)) else { continue }
                        if message.result?.created == true { failures = 0 }
                        if !handle(message, known: &known, nextRevision: &nextRevision, continuation: continuation) {
                            restart = true
                            break read
                        }
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

    /// Emits the message's events and tracks the revision to resume at. Returns false when the watch must
    /// start over (etcd cancelled it, e.g. because the revision it needed was compacted).
    private func handle(_ message: EtcdWatchMessage, known: inout [String: Known], nextRevision: inout Int64,
                        continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation) -> Bool {
        guard let result = message.result else { return message.error == nil }
        if result.canceled == true || (result.compact_revision?.value ?? 0) > 0 { return false }
        for event in result.events ?? [] {
            guard let kv = event.kv else { continue }
            let key = kv.keyText
            if let revision = kv.mod_revision?.value { nextRevision = revision + 1 }
            if event.type == "DELETE" {
                let service = known.removeValue(forKey: key)?.service
                    ?? event.prev_kv?.valueData.flatMap { try? JSONDecoder().decode(Service.self, from: $0) }
                    ?? serviceFromKey(key)
                if let service { continuation.yield(RegistryEvent(kind: .delete, service: service)) }
            } else if let data = kv.valueData, let service = try? JSONDecoder().decode(Service.self, from: data) {
                let kind: RegistryEvent.Kind = known[key] == nil ? .create : .update
                known[key] = Known(createRevision: kv.create_revision?.value ?? 0, service: service)
                continuation.yield(RegistryEvent(kind: kind, service: service))
            }
        }
        return true
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
