import Foundation
import MicroHTTP
import Synchronization

/// One watch of a key prefix: a long-lived streaming POST to `/v3/watch` whose newline-delimited JSON
/// messages become ``RegistryEvent``s. When the stream breaks it reconnects (to the next endpoint, backing
/// off) and resumes at the last revision seen plus one, so no event is lost or repeated unless etcd compacted
/// it meanwhile (then it resumes at the compaction point). Thread-safe.
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

    /// Opens the first stream (throwing when no endpoint answers), then keeps it open in the background.
    func start() async throws -> RegistryWatcher {
        let first = try await open(from: nil)
        let (events, continuation) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
        let task = Task { [self] in
            await run(first: first, continuation: continuation)
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

    private func open(from revision: Int64?) async throws -> HTTPStreamingResponse {
        let create = EtcdWatchCreate(create_request: .init(
            key: prefix.base64, range_end: prefixRangeEnd(prefix),
            start_revision: revision.map(EtcdInt.init), prev_kv: true))
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

    private func run(first: HTTPStreamingResponse, continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation) async {
        var stream: HTTPStreamingResponse? = first
        var nextRevision: Int64?
        var failures = 0
        while !state.withLock({ $0.stopped }) {
            if stream == nil {
                do {
                    stream = try await open(from: nextRevision)
                } catch {
                    failures += 1
                    try? await Task.sleep(for: delay(failures))
                    continue
                }
            }
            var line: [UInt8] = []
            do {
                for try await chunk in stream!.body {
                    for byte in chunk {
                        if byte == 10 {
                            if let message = try? JSONDecoder().decode(EtcdWatchMessage.self, from: Data(line)) {
                                if message.result?.created == true { failures = 0 }
                                handle(message, nextRevision: &nextRevision, continuation: continuation)
                            }
                            line.removeAll(keepingCapacity: true)
                        } else {
                            line.append(byte)
                        }
                    }
                }
            } catch {
                // Broken or cancelled: reconnect below unless stopped.
            }
            stream?.cancel()
            stream = nil
            if state.withLock({ $0.stopped }) { break }
            client.avoidCurrentEndpoint()
            failures += 1
            try? await Task.sleep(for: delay(failures))
        }
        continuation.finish()
    }

    private func delay(_ failures: Int) -> Duration {
        var d = backoffFirst
        for _ in 1..<max(1, failures) where d < backoffMax { d *= 2 }
        return min(d, backoffMax)
    }

    private func handle(_ message: EtcdWatchMessage, nextRevision: inout Int64?,
                        continuation: AsyncThrowingStream<RegistryEvent, any Error>.Continuation) {
        guard let result = message.result else { return }
        if let compacted = result.compact_revision?.value, compacted > 0 {
            nextRevision = compacted
            return
        }
        if result.created == true, let revision = result.header?.revision?.value, nextRevision == nil {
            nextRevision = revision + 1
        }
        for event in result.events ?? [] {
            guard let kv = event.kv else { continue }
            if let revision = kv.mod_revision?.value { nextRevision = revision + 1 }
            if event.type == "DELETE" {
                let service = event.prev_kv?.valueData.flatMap { try? JSONDecoder().decode(Service.self, from: $0) }
                    ?? serviceFromKey(kv.keyText)
                if let service { continuation.yield(RegistryEvent(kind: .delete, service: service)) }
            } else if let data = kv.valueData, let service = try? JSONDecoder().decode(Service.self, from: data) {
                let kind: RegistryEvent.Kind = kv.version?.value == 1 ? .create : .update
                continuation.yield(RegistryEvent(kind: kind, service: service))
            }
        }
    }

    /// A service with only a name and a node id, from `<prefix><service>/<node id>` (a delete without its
    /// previous value).
    private func serviceFromKey(_ key: String) -> Service? {
        guard key.hasPrefix(registryPrefix) else { return nil }
        let parts = key.dropFirst(registryPrefix.count).split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        return Service(name: unescape(parts[0]), version: "", nodes: [Node(id: unescape(parts[1]), address: "")])
    }
}

/// Reverses ``LocalRegistry/escape(_:)``.
func unescape(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var it = Array(text.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
