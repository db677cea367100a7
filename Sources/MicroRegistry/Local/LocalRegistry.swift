public import MicroCore
import Foundation
import Synchronization

/// The zero-config default: a registry shared by every process of one user on one machine, with no server.
///
/// Layout: a directory (``defaultDirectory``: `$MICRO_REGISTRY_DIR`, else `$TMPDIR/micro-registry-<uid>`)
/// holding `<service>/<node>.json`, one file per node with its expiry time (wall clock), written atomically
/// (a temporary file renamed into place). Readers skip expired files; files expired for more than a minute are
/// removed by whoever reads them. Watching polls the directory (``pollInterval``) and reports the difference.
///
/// Not promised: that another process sees a change before its next poll; use across machines (use etcd).
/// Registrations do not renew themselves: register again within the TTL (the RPC server does).
public final class LocalRegistry: Registry {
    public let directory: String
    public let pollInterval: Duration

    /// Files expired for longer than this are deleted by readers (long after any renewal would have come).
    static let cleanupGrace: Double = 60

    struct Record: Codable {
        /// Seconds since 1970 after which the node is gone; nil: never expires.
        var expires: Double?
        var service: Service
    }

    public init(directory: String? = nil, pollInterval: Duration = .milliseconds(200)) {
        self.directory = directory ?? Self.defaultDirectory()
        self.pollInterval = pollInterval
    }

    /// `$MICRO_REGISTRY_DIR`, else `$TMPDIR/micro-registry-<uid>` (`/tmp` when TMPDIR is unset).
    public static func defaultDirectory() -> String {
        defaultDirectory(environment: ProcessInfo.processInfo.environment)
    }

    /// The default directory for `environment`.
    public static func defaultDirectory(environment: [String: String]) -> String {
        if let dir = environment["MICRO_REGISTRY_DIR"], !dir.isEmpty { return dir }
        var tmp = environment["TMPDIR"] ?? "/tmp"
        if tmp.hasSuffix("/") { tmp.removeLast() }
        return "\(tmp)/micro-registry-\(getuid())"
    }

    public func register(_ service: Service, options: RegisterOptions) async throws {
        try service.validate()
        let expires = options.ttl.map { Date().timeIntervalSince1970 + Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        let dir = serviceDirectory(service.name)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            for node in service.nodes {
                let data = try encoder.encode(Record(expires: expires, service: service.with(node: node)))
                let path = dir + "/" + escapeKeyComponent(node.id) + ".json"
                let tmp = dir + "/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
                guard FileManager.default.createFile(atPath: tmp, contents: data) else {
                    throw RegistryError.unavailable("cannot write \(tmp)")
                }
                guard rename(tmp, path) == 0 else {
                    unlink(tmp)
                    throw RegistryError.unavailable("cannot rename to \(path): errno \(errno)")
                }
            }
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError.unavailable("\(directory): \(error)")
        }
    }

    public func deregister(_ service: Service) async throws {
        let dir = serviceDirectory(service.name)
        for node in service.nodes {
            unlink(dir + "/" + escapeKeyComponent(node.id) + ".json")
        }
        rmdir(dir)  // only succeeds when empty
    }

    public func getService(_ name: String) async throws -> [Service] {
        var cache: [String: CachedFile] = [:]
        let records = scan(name, cache: &cache)
        guard !records.isEmpty else { throw RegistryError.notFound(name) }
        return mergeByVersion(records.sorted { $0.key < $1.key }.map(\.value))
    }

    public func listServices() async throws -> [Service] {
        var cache: [String: CachedFile] = [:]
        let records = scan(nil, cache: &cache)
        let byName = Dictionary(grouping: records.sorted { $0.key < $1.key }.map(\.value), by: \.name)
        return byName.keys.sorted().flatMap { mergeByVersion(byName[$0]!) }
    }

    public func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        let (stream, continuation) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
        var initialCache: [String: CachedFile] = [:]
        let initial = scan(options.service, cache: &initialCache)
        let task = Task(executorPreference: BackgroundExecutor.shared) { [self, initialCache] in
            var cache = initialCache
            var known = initial
            while !Task.isCancelled {
                try? await BackgroundExecutor.shared.sleep(for: pollInterval)
                if Task.isCancelled { break }
                let now = scan(options.service, cache: &cache)
                for (key, service) in now {
                    if let old = known[key] {
                        if old != service { continuation.yield(RegistryEvent(kind: .update, service: service)) }
                    } else {
                        continuation.yield(RegistryEvent(kind: .create, service: service))
                    }
                }
                for (key, service) in known where now[key] == nil {
                    continuation.yield(RegistryEvent(kind: .delete, service: service))
                }
                known = now
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return RegistryWatcher(events: stream) { task.cancel() }
    }

    // MARK: - Files

    struct CachedFile {
        var modified: timespec
        var size: Int
        var record: Record?
    }

    func serviceDirectory(_ name: String) -> String { directory + "/" + escapeKeyComponent(name) }

    /// Live records by file path, for one service or all. `cache` keeps decoded files by modification time so
    /// that polling decodes only what changed.
    func scan(_ service: String?, cache: inout [String: CachedFile]) -> [String: Service] {
        let dirs: [String]
        if let service {
            dirs = [serviceDirectory(service)]
        } else {
            dirs = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
        }
        let now = Date().timeIntervalSince1970
        var result: [String: Service] = [:]
        var seen = Set<String>()
        for dir in dirs {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where file.hasSuffix(".json") && !file.hasPrefix(".") {
                let path = dir + "/" + file
                var st = stat()
                guard stat(path, &st) == 0 else { continue }
                seen.insert(path)
                let record: Record?
                if let c = cache[path], c.modified.tv_sec == st.st_mtim.tv_sec, c.modified.tv_nsec == st.st_mtim.tv_nsec, c.size == Int(st.st_size) {
                    record = c.record
                } else {
                    record = Self.readFile(path).flatMap { try? JSONDecoder().decode(Record.self, from: $0) }
                    cache[path] = CachedFile(modified: st.st_mtim, size: Int(st.st_size), record: record)
                }
                guard let record, record.service.nodes.count == 1 else { continue }
                if let expires = record.expires, expires <= now {
                    if now - expires > Self.cleanupGrace { unlink(path) }
                    continue
                }
                result[path] = record.service
            }
        }
        for key in cache.keys where !seen.contains(key) { cache[key] = nil }
        return result
    }

    /// The bytes of a file, nil when it cannot be read. Not `FileManager.contents(atPath:)`: on Linux it leaks 4 KB
    /// for each empty file it reads (swift-foundation 6.x), and an empty node file (a full disk, a stray file)
    /// would leak on every read of the registry.
    static func readFile(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes += chunk[..<n]
            } else if n == 0 {
                return Data(bytes)
            } else if errno != EINTR {
                return nil
            }
        }
    }
}
