import Glibc
import MicroEventLoop
import Synchronization
import Testing

// Scenarios that lower the process's fd limit, or that crash the process when they fail, run in a child
// process (an exit test): the fd limit is process-wide and would disturb the tests running in parallel, and
// a crash must fail one test, not end the whole run. A child records each failure as an issue at once (Swift
// Testing forwards it to the parent, so it shows even when a crash follows) and exits non-zero if there was any.

/// Every test that runs in a child process (an exit test), one at a time: Swift Testing's parent side blocks a
/// thread of the cooperative pool while its child runs, and two at once would hold a 2-core machine's whole pool,
/// stalling every other test of a parallel run for seconds.
@Suite("In child processes, one at a time", .serialized)
enum ChildProcessTests {}

/// Failures seen in this (child) process.
private let childFailures = Atomic<Int>(0)

/// Records a failure of a child-process scenario.
private func check(_ ok: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard !ok else { return }
    childFailures.add(1, ordering: .relaxed)
    Issue.record(Comment(rawValue: message()), sourceLocation: sourceLocation)
}

private func runScenario(_ scenario: () async -> Void) async -> Never {
    await scenario()
    exit(childFailures.load(ordering: .relaxed) == 0 ? 0 : 1)
}

/// The highest fd number open in this process.
private func highestFD() -> Int32 {
    guard let dir = opendir("/proc/self/fd") else { return 1024 }
    defer { closedir(dir) }
    var highest: Int32 = 0
    while let e = readdir(dir) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if let n = Int32(name) { highest = max(highest, n) }
    }
    return highest
}

/// Accepting through fd exhaustion (EMFILE), as libuv's test-emfile does it: lower RLIMIT_NOFILE, fill every
/// slot, free one for the client's socket, connect.
private func emfileScenario() async {
    let serverGroup = EventLoopGroup(threads: 1)
    let clientGroup = EventLoopGroup(threads: 1)
    let saved = fileLimit()
    var dups: [Int32] = []
    func freeFDs() {
        for fd in dups { close(fd) }
        dups.removeAll()
        setFileLimit(soft: saved.rlim_cur)
    }
    do {
        let server = try await EchoServer.start(on: serverGroup.loops)
        let a = try await TestClient.connect(on: clientGroup.loops[0], to: server.address)
        check(try await a.echo([1]), "the first connection did not echo")
        check(server.listener.acceptErrors == 0, "accept errors before the fd limit was lowered")

        // Lower the limit to a little above what is open, fill every slot, then free exactly one.
        check(setFileLimit(soft: rlim_t(highestFD() + 1 + 32)), "setrlimit failed")
        while true {
            let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                check(errno == EMFILE, "open failed with errno \(errno), not EMFILE")
                break
            }
            dups.append(fd)
            if dups.count > 10_000 { check(false, "the fd limit did not take"); break }
        }
        close(dups.removeLast())

        // The client's socket takes the last free slot; the server's accept then fails with EMFILE.
        let b = try await TestClient.connect(on: clientGroup.loops[0], to: server.address)
        try await b.send(lengthPrefixedFrame([2]))
        check(await eventually(timeout: .seconds(10)) { b.closed },
              "the connection accepted during EMFILE was not closed by the server (it hangs)")
        check(b.stats.value.received.isEmpty, "the connection accepted during EMFILE got an echo")
        check(server.count == 1, "the server handed out a connection during EMFILE")
        check(server.listener.acceptErrors > 0,
              "TCPListener.acceptErrors is \(server.listener.acceptErrors) after an accept failed with EMFILE")
        // An existing connection is unaffected.
        check(try await a.echo([3]), "the existing connection stopped echoing during EMFILE")

        // With descriptors free again, accepting resumes.
        freeFDs()
        let c = try await TestClient.connect(on: clientGroup.loops[0], to: server.address)
        check(try await c.echo([4]), "a new connection after EMFILE did not echo")
        check(await eventually { server.count == 2 }, "the server did not accept the connection after EMFILE")
    } catch {
        check(false, "error: \(error)")
    }
    freeFDs()
    check(clientGroup.shutdownGracefully(), "client group did not close clean")
    check(serverGroup.shutdownGracefully(), "server group did not close clean")
}

/// A client connection to a server that never reads, with 64 MiB written and closeAfterFlush() called, so that
/// the shutdown request is still pending behind queued writes; then `then` runs.
private func drainingClientScenario(_ name: String, then: @escaping @Sendable (TCPConnection, SinkServer) async throws -> Void) async {
    let serverGroup = EventLoopGroup(threads: 1)
    let clientGroup = EventLoopGroup(threads: 1)
    do {
        let server = try await SinkServer.start(on: serverGroup.loops)
        let connection = try await TCPConnection.connect(on: clientGroup.loops[0], to: server.listener.localAddress)
        let stats = Locked(ClientStats())
        let pending = try await connection.loop.submit {
            connection.delegate = Collector(stats: stats)
            connection.startReading()
            connection.write(contentsOf: [UInt8](repeating: 0x55, count: 64 << 20))
            connection.closeAfterFlush()
            return connection.pendingOutboundBytes
        }
        check(pending > 0, "\(name): nothing was left queued; the scenario did not happen")
        check(await eventually { server.connections.value.count == 1 }, "\(name): the server did not accept")
        try await then(connection, server)
        check(await eventually(timeout: .seconds(5)) { stats.value.closed == 1 },
              "\(name): the client's delegate never got connectionDidClose")
    } catch {
        check(false, "\(name): error: \(error)")
    }
    check(clientGroup.shutdownGracefully(), "\(name): client group did not close clean")
    check(serverGroup.shutdownGracefully(), "\(name): server group did not close clean")
}

extension ChildProcessTests {
    @Suite("TCP: fd exhaustion and closing while draining (each in a child process)")
    struct TCPFaultTests {
        @Test("EMFILE during accept: the new client is closed, acceptErrors counts it, others keep working, accepting resumes",
              .timeLimit(.minutes(1)))
        func emfileDuringAccept() async {
            await #expect(processExitsWith: .success) {
                await runScenario { await emfileScenario() }
            }
        }

        @Test("close() while closeAfterFlush() is still draining closes once, without crashing", .timeLimit(.minutes(1)))
        func closeWhileDraining() async {
            await #expect(processExitsWith: .success, "SIGABRT here: libuv's uv_close assertion (double close)") {
                await runScenario {
                    await drainingClientScenario("close while draining") { connection, _ in
                        try await connection.loop.submit { connection.close() }
                    }
                }
            }
        }

        @Test("reset() while closeAfterFlush() is still draining closes the connection", .timeLimit(.minutes(1)))
        func resetWhileDraining() async {
            await #expect(processExitsWith: .success, "SIGABRT here: libuv's uv_close assertion (double close)") {
                await runScenario {
                    await drainingClientScenario("reset while draining") { connection, _ in
                        try await connection.loop.submit { connection.reset() }
                    }
                }
            }
        }

        @Test("the peer resets while closeAfterFlush() is still draining: the close is reported, without crashing",
              .timeLimit(.minutes(1)))
        func peerResetWhileDraining() async {
            await #expect(processExitsWith: .success, "SIGABRT here: libuv's uv_close assertion (double close)") {
                await runScenario {
                    await drainingClientScenario("peer reset while draining") { _, server in
                        let s = server.connections.value[0]
                        try await s.loop.submit { s.reset() }
                    }
                }
            }
        }

        @Test("loop shutdown while closeAfterFlush() is still draining closes clean", .timeLimit(.minutes(1)))
        func shutdownWhileDraining() async {
            await #expect(processExitsWith: .success, "SIGABRT here: libuv's uv_close assertion (double close)") {
                await runScenario {
                    let serverGroup = EventLoopGroup(threads: 1)
                    let clientGroup = EventLoopGroup(threads: 1)
                    do {
                        let server = try await SinkServer.start(on: serverGroup.loops)
                        let connection = try await TCPConnection.connect(on: clientGroup.loops[0], to: server.listener.localAddress)
                        let stats = Locked(ClientStats())
                        try await connection.loop.submit {
                            connection.delegate = Collector(stats: stats)
                            connection.write(contentsOf: [UInt8](repeating: 0x55, count: 64 << 20))
                            connection.closeAfterFlush()
                        }
                        check(clientGroup.shutdownGracefully(), "client group did not close clean")
                        check(stats.value.closed == 1, "the delegate got \(stats.value.closed) closes")
                    } catch {
                        check(false, "error: \(error)")
                    }
                    _ = clientGroup.shutdownGracefully()
                    check(serverGroup.shutdownGracefully(), "server group did not close clean")
                }
            }
        }
    }
}

/// Whether something holds `port` on 127.0.0.1 (a plain bind, without SO_REUSEADDR/SO_REUSEPORT, fails).
private func portInUse(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return rc != 0 && errno == EADDRINUSE
}

extension ChildProcessTests {
    @Suite("TCP: bind failures (in a child process, to count descriptors exactly)")
    struct TCPBindFailureTests {
        @Test("a bind that fails because a loop is shut down leaks no socket and frees the port", .timeLimit(.minutes(1)))
        func bindOnShutDownLoop() async {
            await #expect(processExitsWith: .success) {
                await runScenario {
                    // Find a free port, then bind it on a group whose second loop is already shut down.
                    let probe = EventLoopGroup(threads: 1)
                    var port = 0
                    do {
                        let l = try await TCPListener.bind(loops: probe.loops, address: loopback) { _ in }
                        port = l.localAddress.port
                        await l.close()
                    } catch { check(false, "probe bind: \(error)") }
                    check(probe.shutdownGracefully(), "probe group did not close clean")

                    let group = EventLoopGroup(threads: 2)
                    // Warm loop 0 up (libuv keeps one spare descriptor per loop once it has a stream), and the
                    // test's own sleeping.
                    do {
                        let warm = try await TCPListener.bind(loops: [group.loops[0]], address: loopback) { _ in }
                        await warm.close()
                    } catch { check(false, "warm-up bind: \(error)") }
                    try? await Task.sleep(for: .milliseconds(50))
                    check(group.loops[1].shutdownGracefully() == 0, "loop 1 did not close clean")
                    let before = openFDCount()
                    do {
                        _ = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: port)) { _ in }
                        check(false, "bind on a shut-down loop succeeded")
                    } catch {
                        check((error as? EventLoopError) == .shutdown, "bind failed with \(error), not EventLoopError.shutdown")
                    }
                    // Give loop 0 time to close the listener it had opened.
                    try? await Task.sleep(for: .milliseconds(50))
                    let after = openFDCount()
                    check(after == before, "open descriptors: \(before) before the failed bind, \(after) after (a socket leaked)")
                    check(!portInUse(port), "port \(port) is still bound after the failed bind")
                    check(group.shutdownGracefully(), "group did not close clean")
                }
            }
        }
    }
}
