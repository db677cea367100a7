import Foundation
import MicroEventLoop
import MicroHTTP

/// Debian's `etcd` on free loopback ports with fresh data directories; members killed by pid.
/// If etcd is not installed this fails loudly: the test command installs it (scripts/install-deps).
public final class EtcdCluster: @unchecked Sendable {
    public struct Member {
        public let name: String
        public let clientPort: Int
        public let peerPort: Int
        public var dataDir: String
        var process: ChildProcess?
        public var endpoint: String { "127.0.0.1:\(clientPort)" }
    }

    public let binary: String
    public let directory: String
    public let token: String
    // Used by the test's own task only.
    public var members: [Member]
    private let loop = EventLoop()

    public var endpoints: [String] { members.map(\.endpoint) }

    public static func findEtcd() throws -> String {
        for dir in ["/usr/bin", "/usr/local/bin"] + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) {
            let path = dir + "/etcd"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw TestProcessError(description: "etcd is not installed: run scripts/install-deps (Debian package etcd-server); the etcd tests need it")
    }

    /// Starts `size` members and waits until each answers /health.
    public init(size: Int) async throws {
        binary = try Self.findEtcd()
        directory = try makeTemporaryDirectory("micro-etcd")
        token = "micro-\(UUID().uuidString.prefix(8))"
        members = (0..<size).map { i in
            Member(name: "m\(i)", clientPort: freePort(), peerPort: freePort(), dataDir: "", process: nil)
        }
        for i in members.indices { try start(i) }
        for i in members.indices { try await waitHealthy(i) }
    }

    var initialCluster: String {
        members.map { "\($0.name)=http://127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
    }

    /// Starts member `i` (again); `wipe` gives it an empty data directory (a single-member cluster starts anew).
    public func start(_ i: Int, wipe: Bool = false) throws {
        if members[i].dataDir.isEmpty || wipe {
            members[i].dataDir = directory + "/\(members[i].name)-\(UUID().uuidString.prefix(6))"
        }
        let m = members[i]
        let args = [
            "--name", m.name, "--data-dir", m.dataDir,
            "--listen-client-urls", "http://127.0.0.1:\(m.clientPort)", "--advertise-client-urls", "http://127.0.0.1:\(m.clientPort)",
            "--listen-peer-urls", "http://127.0.0.1:\(m.peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(m.peerPort)",
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
            "--heartbeat-interval", "50", "--election-timeout", "500",
        ]
        members[i].process = try ChildProcess(binary, args, logPath: directory + "/\(m.name).log")
    }

    public func kill(_ i: Int) {
        members[i].process?.kill()
        members[i].process = nil
    }

    public func waitHealthy(_ i: Int, seconds: Double = 60) async throws {
        let client = HTTPClient(loop: loop)
        let address = try SocketAddress(host: "127.0.0.1", port: members[i].clientPort)
        let ok = await eventually(seconds) {
            guard let r = try? await client.execute(HTTPRequest(path: "/health"), to: address, timeout: .milliseconds(500)) else { return false }
            return r.status == 200 && String(decoding: r.body, as: UTF8.self).contains("true")
        }
        if !ok {
            let log = (try? String(contentsOfFile: directory + "/\(members[i].name).log", encoding: .utf8)) ?? ""
            throw TestProcessError(description: "etcd member \(members[i].name) not healthy in \(seconds) s; log tail:\n\(log.suffix(2000))")
        }
    }

    public func stop() {
        for i in members.indices { kill(i) }
        _ = loop.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
