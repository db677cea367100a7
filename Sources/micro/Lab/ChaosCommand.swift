import ArgumentParser
import Foundation
import Glibc
import MicroCore
import MicroEventLoop
import MicroRegistry
import MicroRPC
import MicroSelector
import MicroUVTransport
import Synchronization

/// `micro chaos`: the client under registry chaos, with a call ledger (formerly `micro-chaos`). A real etcd-server
/// (a child process), N servers and C callers calling in a loop with a deadline; every call carries an id, the
/// servers count how often each id ran, and the ledger counts every call's outcome. Scenarios:
///
///   replace    every node stops gracefully (as on SIGTERM: it deregisters); new nodes start 2 s later.
///   etcd-wipe  the servers lose etcd; etcd is killed and started again empty; the servers stay away from it for
///              6 s more, then register again.
///
/// Printed per scenario: calls, successes, failures by code, calls stuck past their deadline, calls run twice,
/// and for `replace` how long after the new nodes registered the first and the last caller succeeded again.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "The client under registry chaos with a call ledger (needs etcd-server); see docs/DISCOVERY.md."
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable { case replace, etcdWipe = "etcd-wipe", all }

    @Option(help: "replace, etcd-wipe or all.") var scenario: Scenario = .all
    @Option(help: "Callers calling in a loop.") var callers = 64
    @Option(help: "Servers.") var nodes = 3
    @Option(name: .customLong("deadline-ms"), help: "Each call's deadline, in milliseconds.") var deadlineMilliseconds = 1000

    func validate() throws {
        for (name, v) in [("--callers", callers), ("--nodes", nodes), ("--deadline-ms", deadlineMilliseconds)] where !(1...100_000).contains(v) {
            throw ValidationError("\(name) needs a positive integer, not \(v)")
        }
    }

    func run() async throws {
        var config = Chaos.Options()
        config.scenarios = scenario == .all ? ["replace", "etcd-wipe"] : [scenario.rawValue]
        config.callers = callers
        config.nodes = nodes
        config.deadline = .milliseconds(deadlineMilliseconds)
        say("micro chaos: \(config.callers) callers, \(config.nodes) nodes, deadline \(config.deadline), real etcd")
        var failedAny = false
        for name in config.scenarios {
            do {
                let r = try await Chaos.scenario(name, config: config)
                let failures = r.failed.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                say("\n## \(r.scenario)")
                for note in r.notes { say("- \(note)") }
                say("- calls \(r.calls), succeeded \(r.succeeded), failed \(r.failed.values.reduce(0, +))\(failures.isEmpty ? "" : " (\(failures))"), stuck \(r.stuck), run twice \(r.duplicated), lost \(r.calls - r.succeeded - r.failed.values.reduce(0, +) - r.stuck)")
            } catch {
                FileHandle.standardError.write(Data("micro chaos: \(name): \(error)\n".utf8))
                failedAny = true
            }
        }
        if failedAny { throw CLIError("a scenario failed (see above)", .failed) }
    }
}

enum Chaos {
    struct Options {
        var scenarios = ["replace", "etcd-wipe"]
        var callers = 64
        var nodes = 3
        var deadline: Duration = .seconds(1)
    }

    // MARK: - etcd

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// One etcd member in a directory of its own.
    final class Etcd: @unchecked Sendable {
        let binary: String
        let directory: String
        let clientPort = freePort()
        let peerPort = freePort()
        var process: Process?
        var endpoint: String { "127.0.0.1:\(clientPort)" }

        init() throws {
            guard let found = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first(where: FileManager.default.isExecutableFile) else {
                throw ChaosError("etcd is not installed (scripts/install-deps installs Debian's etcd-server)")
            }
            binary = found
            directory = NSTemporaryDirectory() + "micro-chaos-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }

        /// Starts etcd on a fresh (empty) data directory.
        func startEmpty() throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = [
                "--name", "chaos", "--data-dir", directory + "/data-\(UUID().uuidString.prefix(6))",
                "--listen-client-urls", "http://\(endpoint)", "--advertise-client-urls", "http://\(endpoint)",
                "--listen-peer-urls", "http://127.0.0.1:\(peerPort)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peerPort)",
                "--initial-cluster", "chaos=http://127.0.0.1:\(peerPort)", "--heartbeat-interval", "50", "--election-timeout", "500",
            ]
            let logPath = directory + "/etcd.log"
            if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
            guard let log = FileHandle(forWritingAtPath: logPath) else { throw ChaosError("cannot write \(logPath)") }
            log.seekToEndOfFile()
            p.standardOutput = log
            p.standardError = log
            try p.run()
            process = p
        }

        func kill() {
            guard let p = process else { return }
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            process = nil
        }

        func waitHealthy(_ registry: EtcdRegistry) async throws {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                if (try? await registry.listServices()) != nil { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ChaosError("etcd did not become healthy; see \(directory)/etcd.log")
        }

        func stop() {
            kill()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    struct ChaosError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// The servers' way to the registry, which the scenario can cut.
    final class CuttableRegistry: Registry {
        private let inner: Mutex<(any Registry)?>
        init(_ inner: any Registry) { self.inner = Mutex(inner) }
        func cut() -> (any Registry)? { inner.withLock { i in defer { i = nil }; return i } }
        func restore(_ registry: any Registry) { inner.withLock { $0 = registry } }
        private func current() throws -> any Registry {
            guard let r = inner.withLock({ $0 }) else { throw RegistryError.unavailable("cut off from the registry") }
            return r
        }
        func register(_ service: Service, options: RegisterOptions) async throws { try await current().register(service, options: options) }
        func deregister(_ service: Service) async throws { try await current().deregister(service) }
        func getService(_ name: String) async throws -> [Service] { try await current().getService(name) }
        func listServices() async throws -> [Service] { try await current().listServices() }
        func watch(_ options: WatchOptions) async throws -> RegistryWatcher { try await current().watch(options) }
    }

    static func etcdRegistry(_ etcd: Etcd, prefix: String) throws -> EtcdRegistry {
        var c = EtcdConfiguration(endpoints: [etcd.endpoint])
        c.prefix = prefix
        c.requestTimeout = .milliseconds(1000)
        c.reconnectBackoffMax = .milliseconds(500)
        return try EtcdRegistry(configuration: c)
    }

    // MARK: - Ledger

    /// Every call's outcome, and how often each call id ran on a server. Thread-safe (mutexes).
    final class Ledger: Sendable {
        let nextID = Atomic<UInt64>(0)
        let succeeded = Atomic<Int>(0)
        let failed = Mutex<[String: Int]>([:])
        let executions = Mutex<[UInt64: Int]>([:])
        let inFlight = Mutex<[UInt64: Timestamp]>([:])
        /// Per caller: when it last succeeded.
        let lastSuccess: Mutex<[Timestamp]>

        init(callers: Int) { lastSuccess = Mutex(Array(repeating: Timestamp(nanoseconds: 0), count: callers)) }

        func ran(_ id: UInt64) { executions.withLock { $0[id, default: 0] += 1 } }
        var duplicated: Int { executions.withLock { $0.values.filter { $0 > 1 }.count } }
        var failures: Int { failed.withLock { $0.values.reduce(0, +) } }
    }

    static func startServer(_ name: String, registry: any Registry, ledger: Ledger) async throws -> (Server, EventLoopGroup) {
        let group = EventLoopGroup(threads: 1)
        var c = ServerConfiguration(name: name)
        c.registerTTL = .seconds(10)
        c.registerInterval = .seconds(1)
        let server = Server(configuration: c, transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)),
                            registry: registry)
        server.handle("Ledger.Call") { request, _ in
            if request.body.count == 8 {
                ledger.ran(request.body.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            }
            return Response(body: request.body)
        }
        try await server.start()
        return (server, group)
    }

    // MARK: - Scenarios

    struct Report {
        var scenario: String
        var calls = 0
        var succeeded = 0
        var failed: [String: Int] = [:]
        var stuck = 0
        var duplicated = 0
        var notes: [String] = []
    }

    /// Runs callers until `stop` is set; each loops: id, call, record.
    static func runCallers(_ client: Client, service: String, ledger: Ledger, stop: StopFlag, callers: Int, deadline: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    while !stop.value.load(ordering: .relaxed) {
                        let id = ledger.nextID.add(1, ordering: .relaxed).newValue
                        var body = [UInt8](repeating: 0, count: 8)
                        body.withUnsafeMutableBytes { $0.storeBytes(of: id, as: UInt64.self) }
                        ledger.inFlight.withLock { $0[id] = .now }
                        do {
                            _ = try await client.call(Request(service: service, endpoint: "Ledger.Call", body: body),
                                                      options: CallOptions(timeout: deadline))
                            ledger.succeeded.add(1, ordering: .relaxed)
                            ledger.lastSuccess.withLock { $0[caller] = .now }
                        } catch let e as RPCError {
                            ledger.failed.withLock { $0["\(e.code)", default: 0] += 1 }
                        } catch {
                            ledger.failed.withLock { $0["other", default: 0] += 1 }
                        }
                        ledger.inFlight.withLock { _ = $0.removeValue(forKey: id) }
                    }
                }
            }
        }
    }

    final class StopFlag: Sendable {
        let value = Atomic<Bool>(false)
    }

    static func scenario(_ name: String, config: Options) async throws -> Report {
        let etcd = try Etcd()
        defer { etcd.stop() }
        try etcd.startEmpty()
        let prefix = "/micro-chaos/"
        let serverRegistry = CuttableRegistry(try etcdRegistry(etcd, prefix: prefix))
        let clientRegistry = try etcdRegistry(etcd, prefix: prefix)
        try await etcd.waitHealthy(clientRegistry)
        let ledger = Ledger(callers: config.callers)
        var servers: [(Server, EventLoopGroup)] = []
        for _ in 0..<config.nodes { servers.append(try await startServer("chaos", registry: serverRegistry, ledger: ledger)) }

        let selector = RegistrySelector(registry: clientRegistry)
        let clientGroup = EventLoopGroup(threads: 1)
        let transport = UVClientTransport(group: clientGroup)
        let client = Client(transport: transport, selector: selector)
        let stop = StopFlag()
        let callers = Task { await runCallers(client, service: "chaos", ledger: ledger, stop: stop, callers: config.callers, deadline: config.deadline) }
        try await Task.sleep(for: .seconds(2))
        var report = Report(scenario: name)

        switch name {
        case "replace":
            let before = ledger.succeeded.load(ordering: .relaxed)
            await withTaskGroup(of: Void.self) { g in
                for (server, _) in servers { g.addTask { await server.shutdown(gracePeriod: .seconds(5)) } }
            }
            for (_, group) in servers { _ = group.shutdownGracefully() }
            servers = []
            report.notes.append("\(config.nodes) nodes stopped gracefully after \(before) calls; new nodes start 2 s later")
            try await Task.sleep(for: .seconds(2))
            var registeredAt = Timestamp.now
            for i in 0..<config.nodes {
                servers.append(try await startServer("chaos", registry: serverRegistry, ledger: ledger))
                if i == 0 { registeredAt = .now }
            }
            // Wait until every caller succeeded again (or 10 s).
            let giveUp = Timestamp.now.advanced(by: .seconds(10))
            while Timestamp.now < giveUp {
                if ledger.lastSuccess.withLock({ $0.allSatisfy { $0 > registeredAt } }) { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            let successes = ledger.lastSuccess.withLock { $0 }.filter { $0 > registeredAt }
            let first = successes.min().map { registeredAt.duration(to: $0) }
            let last = successes.count == config.callers ? successes.max().map { registeredAt.duration(to: $0) } : nil
            report.notes.append("after the first new node registered: first success \(ms(first)), every caller succeeded again by \(ms(last))")
            try await Task.sleep(for: .seconds(2))
        case "etcd-wipe":
            let old = serverRegistry.cut() as? EtcdRegistry
            await old?.close()
            etcd.kill()
            let killedAt = Timestamp.now
            try etcd.startEmpty()
            try await etcd.waitHealthy(clientRegistry)
            let empty = ((try? await clientRegistry.getService("chaos"))?.flatMap(\.nodes).count ?? 0) == 0
            report.notes.append("etcd back \(ms(killedAt.duration(to: .now))) after the kill, \(empty ? "empty" : "NOT empty"); the servers stay away 6 s")
            try await Task.sleep(for: .seconds(6))
            serverRegistry.restore(try etcdRegistry(etcd, prefix: prefix))
            let back = Timestamp.now
            while ((try? await clientRegistry.getService("chaos"))?.flatMap(\.nodes).count ?? 0) < config.nodes, back.duration(to: .now) < .seconds(20) {
                try await Task.sleep(for: .milliseconds(20))
            }
            report.notes.append("the servers registered again \(ms(back.duration(to: .now))) after they could")
            try await Task.sleep(for: .seconds(2))
        default:
            break
        }

        stop.value.store(true, ordering: .relaxed)
        // Every call must end within its deadline (plus a margin for a loaded machine); what is left is stuck.
        let stopAt = Timestamp.now
        while ledger.inFlight.withLock({ !$0.isEmpty }), stopAt.duration(to: .now) < config.deadline + .seconds(5) {
            try await Task.sleep(for: .milliseconds(10))
        }
        report.stuck = ledger.inFlight.withLock { $0.count }
        if report.stuck == 0 { await callers.value }
        report.calls = Int(ledger.nextID.load(ordering: .relaxed))
        report.succeeded = ledger.succeeded.load(ordering: .relaxed)
        report.failed = ledger.failed.withLock { $0 }
        report.duplicated = ledger.duplicated

        for (server, group) in servers {
            await server.shutdown(gracePeriod: .seconds(1))
            _ = group.shutdownGracefully()
        }
        await transport.shutdown()
        _ = clientGroup.shutdownGracefully()
        selector.close()
        await clientRegistry.close()
        if let r = serverRegistry.cut() as? EtcdRegistry { await r.close() }
        return report
    }

    static func ms(_ d: Duration?) -> String {
        guard let d else { return "never (10 s)" }
        return String(format: "%.1f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }
}
