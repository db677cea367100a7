import Foundation
import MicroTestSupport
import Logging
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroTLS
import MicroUVTransport
import Synchronization
import Testing

/// TLS on the transport against outside peers: `openssl s_client`, `openssl s_server` and Python's ssl module.
@Suite("TLS with real peers", .serialized)
struct TLSPeerTests {
    let certs: Certificates

    init() throws { certs = try Certificates.make() }

    func serverContext(requireClientCert: Bool = false, handshakeTimeout: UInt64 = 10_000) throws -> TLSContext {
        var c = TLSConfiguration.server(certificateFile: certs.serverCert, keyFile: certs.serverKey)
        c.trustRoots = .file(certs.ca)
        c.requireClientCertificate = requireClientCert
        c.handshakeTimeoutMilliseconds = handshakeTimeout
        return try TLSContext(role: .server, configuration: c)
    }

    /// A framed-echo server over TLS; returns its port.
    func withEchoServer(_ context: TLSContext, _ body: (Int, EventLoopGroup) async throws -> Void) async throws {
        let group = EventLoopGroup(threads: 1)
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            do { try TLSTransform.attach(to: tcp, context: context) } catch { tcp.close(); return }
            LengthPrefixedConnection.echo(tcp)
        }
        try await body(listener.localAddress.port, group)
        await listener.close()
        #expect(group.shutdownGracefully())
    }

    @Test func opensslClientVerifiesOurServer() async throws {
        defer { certs.remove() }
        try await withEchoServer(try serverContext()) { port, _ in
            let ok = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca,
                                                 "-verify_hostname", "localhost", "-verify_return_error", "-brief"], input: Data())
            #expect(ok.status == 0, "\(ok.output)")
            #expect(ok.output.contains("Verification: OK"))
            #expect(ok.output.contains("TLSv1.3"))
            // TLS 1.1 is refused (protocol version alert).
            let old = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-brief"], input: Data())
            #expect(old.status != 0)
        }
    }

    @Test func tls12ClientsResumeWithTicketsAlone() async throws {
        defer { certs.remove() }
        // The server keeps no session cache: a TLS 1.2 client resumes with its ticket.
        let file = NSTemporaryDirectory() + "micro-tls12-session-\(getpid()).pem"
        defer { unlink(file) }
        try await withEchoServer(try serverContext()) { port, _ in
            let common = ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca, "-tls1_2"]
            let first = try await runAsync("/usr/bin/openssl", common + ["-sess_out", file], input: Data())
            #expect(first.status == 0, "\(first.output)")
            #expect(first.output.contains("New, TLSv1.2"), "\(first.output)")
            let second = try await runAsync("/usr/bin/openssl", common + ["-sess_in", file], input: Data())
            #expect(second.status == 0, "\(second.output)")
            #expect(second.output.contains("Reused, TLSv1.2"), "\(second.output)")
        }
    }

    @Test func pythonSSLClientEchoesThroughOurServer() async throws {
        defer { certs.remove() }
        try await withEchoServer(try serverContext()) { port, _ in
            let script = """
            import socket, ssl, struct, sys
            ctx = ssl.create_default_context(cafile=sys.argv[2])
            with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    frames = b"".join(struct.pack(">I", len(p)) + p for p in [b"", b"hello", bytes(range(256)) * 400])
                    s.sendall(frames)
                    got = b""
                    while len(got) < len(frames):
                        chunk = s.recv(65536)
                        if not chunk: break
                        got += chunk
                    assert got == frames, "echo mismatch"
                    print("echo ok", s.version())
            # A wrong host name is refused by Python's own verification.
            try:
                with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
                    ctx.wrap_socket(raw, server_hostname="other.example")
                print("no error")
            except ssl.SSLCertVerificationError:
                print("hostname refused")
            """
            let r = try await runAsync("/usr/bin/env", ["python3", "-c", script, String(port), certs.ca])
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("echo ok TLSv1.3"))
            #expect(r.output.contains("hostname refused"))
        }
    }

    @Test func garbageAndSilentClientsAreDropped() async throws {
        defer { certs.remove() }
        try await withEchoServer(try serverContext(handshakeTimeout: 200)) { port, group in
            let address = try SocketAddress(host: "127.0.0.1", port: port)
            let garbage = try await RawPeer.connect(group.loops[0], address)
            try await garbage.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            try await eventually(5, "garbage client closed") { garbage.isClosed }
            let silent = try await RawPeer.connect(group.loops[0], address)
            try await eventually(5, "silent client closed after the handshake timeout") { silent.isClosed }
            // Everyone else is still served.
            let r = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca, "-verify_return_error", "-brief"], input: Data())
            #expect(r.status == 0, "\(r.output)")
        }
    }

    @Test func handshakeCutInTheMiddle() async throws {
        defer { certs.remove() }
        // A real ClientHello, from a client session of our own.
        var cc = TLSConfiguration.client(trusting: certs.ca)
        cc.serverName = "localhost"
        let client = try TLSSession(context: try TLSContext(role: .client, configuration: cc), serverName: "localhost")
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        var hello: [UInt8] = []
        try client.start(scratch: scratch) { hello += $0 }
        #expect(hello.count > 100)
        try await withEchoServer(try serverContext(handshakeTimeout: 300)) { port, group in
            let address = try SocketAddress(host: "127.0.0.1", port: port)
            // Half a ClientHello, then the client vanishes.
            let vanishing = try await RawPeer.connect(group.loops[0], address)
            try await vanishing.send(Array(hello.prefix(hello.count / 2)))
            try await group.loops[0].submit { vanishing.connection.reset() }
            // Half a ClientHello, then silence: freed by the handshake timeout.
            let stalled = try await RawPeer.connect(group.loops[0], address)
            try await stalled.send(Array(hello.prefix(hello.count / 2)))
            try await eventually(5, "stalled handshake closed by the server") { stalled.isClosed }
            // The server is fine.
            let r = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca, "-verify_return_error", "-brief"], input: Data())
            #expect(r.status == 0, "\(r.output)")
        }
    }

    @Test func mutualTLSWithOpenSSLClient() async throws {
        defer { certs.remove() }
        try await withEchoServer(try serverContext(requireClientCert: true)) { port, _ in
            let without = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca, "-brief"],
                                  input: Data([0, 0, 0, 1, 65]))
            #expect(!without.output.contains("\u{0}\u{0}\u{0}\u{1}A") || without.status != 0, "refused without a certificate")
            let with = try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", certs.ca, "-brief",
                                                   "-cert", certs.clientCert, "-key", certs.clientKey], input: Data())
            #expect(with.status == 0, "\(with.output)")
        }
    }

    @Test func ourClientAgainstOpenSSLServer() async throws {
        defer { certs.remove() }
        // s_server -rev answers each line reversed.
        let port = Int.random(in: 20_000...29_000)
        let server = try spawn(["/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-cert", certs.serverCert,
                                "-key", certs.serverKey, "-rev", "-quiet"])
        defer { stop(server) }
        let group = EventLoopGroup(threads: 1)
        let address = try SocketAddress(host: "127.0.0.1", port: port)
        var tcp: TCPConnection?
        for _ in 0..<100 where tcp == nil {
            tcp = try? await TCPConnection.connect(on: group.loops[0], to: address)
            if tcp == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let connection = try #require(tcp)
        let peer = RawPeer()
        var cc = TLSConfiguration.client(trusting: certs.ca)
        cc.serverName = "localhost"
        let context = try TLSContext(role: .client, configuration: cc)
        try await group.loops[0].submit {
            peer.connection = connection
            connection.delegate = peer
            try TLSTransform.attach(to: connection, context: context)
            connection.startReading()
            connection.write(contentsOf: Array("hello tls\n".utf8))
        }
        try await eventually(10, "reversed line") { String(decoding: peer.received.withLock { $0 }, as: UTF8.self).contains("slt olleh") }
        try await group.loops[0].submit { connection.close() }
        // The wrong CA: the handshake fails with a readable reason.
        var bad = TLSConfiguration.client(trusting: certs.otherCA)
        bad.serverName = "localhost"
        let badContext = try TLSContext(role: .client, configuration: bad)
        let c2 = try await TCPConnection.connect(on: group.loops[0], to: address)
        let peer2 = FailureRecorder()
        try await group.loops[0].submit {
            c2.delegate = peer2
            try TLSTransform.attach(to: c2, context: badContext)
            c2.startReading()
        }
        try await eventually(10, "handshake failure reported") { peer2.failure.withLock { $0 } != nil }
        #expect(peer2.failure.withLock { $0 }?.contains("untrustedCertificate") == true)
        #expect(group.shutdownGracefully())
    }

    @Test func multiplexedTransportOverTLS() async throws {
        defer { certs.remove() }
        var serverConfig = UVTransportConfiguration()
        serverConfig.tls = try serverContext()
        var clientConfig = UVTransportConfiguration()
        var cc = TLSConfiguration.client(trusting: certs.ca)
        cc.serverName = "localhost"
        clientConfig.tls = try TLSContext(role: .client, configuration: cc)
        clientConfig.maxConnectionsPerAddress = 2
        clientConfig.maxStreamsPerConnection = 100
        let h = try await Harness.start(server: serverConfig, client: clientConfig)
        let ok = try await withTimeout(30) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let m = Array("call \(i)".utf8) + [UInt8](repeating: UInt8(i & 0xFF), count: i * 50)
                        let r = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: m)
                        return r.message == m
                    }
                }
                var n = 0
                for try await r in group where r { n += 1 }
                return n
            }
        }
        #expect(ok == 200)
        await h.stop()
        // A client that does not trust the server's CA fails to connect, retry-safe, with the TLS reason.
        var wrong = UVTransportConfiguration()
        var wc = TLSConfiguration.client(trusting: certs.otherCA)
        wc.serverName = "localhost"
        wrong.tls = try TLSContext(role: .client, configuration: wc)
        let h2 = try await Harness.start(server: serverConfig, client: wrong)
        do {
            _ = try await withTimeout(10) { try await h2.client.unary(to: h2.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
            Issue.record("expected a TLS failure")
        } catch let e as TransportError {
            #expect(e.code == .connectFailed)
            #expect(e.message.contains("untrustedCertificate"), "\(e.message)")
        }
        await h2.stop()
    }
}

final class FailureRecorder: TCPConnectionDelegate, @unchecked Sendable {
    let failure = Mutex<String?>(nil)
    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {}
    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {}
    func connectionTransformDidFail(_ connection: TCPConnection, error: any Error) {
        failure.withLock { $0 = "\(error)" }
    }
}

/// Starts a program directly (posix_spawn, output to /dev/null), so that its pid is the program's own.
func spawn(_ argv: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var pid: pid_t = 0
    let cArgs = argv.map { strdup($0) } + [nil]
    defer { for a in cArgs { free(a) } }
    let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
    guard rc == 0 else { throw CertificateError(message: "posix_spawn \(argv[0]) failed: \(rc)") }
    return pid
}

/// Kills a spawned program and reaps it.
func stop(_ pid: pid_t) {
    kill(pid, SIGKILL)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
}

@Suite("TLS resumption and reload", .serialized)
struct TLSLifecycleTests {
    let certs: Certificates

    init() throws { certs = try Certificates.make() }

    func clientConfig() throws -> UVTransportConfiguration {
        var config = UVTransportConfiguration()
        var cc = TLSConfiguration.client(trusting: certs.ca)
        cc.serverName = "localhost"
        config.tls = try TLSContext(role: .client, configuration: cc)
        config.idleTimeoutMilliseconds = 50
        config.housekeepingIntervalMilliseconds = 10
        return config
    }

    @Test func reconnectsResumeTheSession() async throws {
        defer { certs.remove() }
        var serverConfig = UVTransportConfiguration()
        serverConfig.tls = try TLSContext(role: .server, configuration: .server(certificateFile: certs.serverCert, keyFile: certs.serverKey))
        let resumed = Atomic<Int>(0)
        let h = try await Harness.start(server: serverConfig, client: try clientConfig())
        // Observe resumption from the client's side: a raw connection with the same client context.
        let context = try #require(try clientConfig().tls)
        for round in 0..<3 {
            let tcp = try await TCPConnection.connect(on: h.clientGroup.loops[0], to: try SocketAddress(h.address))
            let peer = RawPeer()
            let transform: TLSTransform = try await h.clientGroup.loops[0].submit {
                peer.connection = tcp
                tcp.delegate = peer
                let t = try TLSTransform.attach(to: tcp, context: context, serverName: "localhost")
                tcp.startReading()
                tcp.write(contentsOf: ConnectionPreface.bytes)
                return t
            }
            // The server's SETTINGS arrive once the handshake is done; tickets come with them.
            try await eventually(10, "server SETTINGS over TLS") { peer.received.withLock { $0.count } >= FrameHeader.size }
            try await Task.sleep(for: .milliseconds(20))
            let wasResumed = try await h.clientGroup.loops[0].submit { transform.session.isResumed }
            if wasResumed { resumed.add(1, ordering: .relaxed) }
            if round == 0 { #expect(!wasResumed, "the first connection is a full handshake") }
            try await h.clientGroup.loops[0].submit { tcp.close() }
        }
        #expect(resumed.load(ordering: .relaxed) == 2, "reconnects resume with the ticket of the previous connection")
        await h.stop()
    }

    @Test func sessionsOfALoopShareOneStorageFreeBIO() async throws {
        defer { certs.remove() }
        let serverContext = try TLSContext(role: .server, configuration: .server(certificateFile: certs.serverCert, keyFile: certs.serverKey))
        let group = EventLoopGroup(threads: 1)
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            do { try TLSTransform.attach(to: tcp, context: serverContext) } catch { tcp.close(); return }
            LengthPrefixedConnection.echo(tcp)
        }
        let context = try #require(try clientConfig().tls)
        // Two client connections on one loop, interleaved: each echo comes back whole over the shared BIO.
        var tcps: [TCPConnection] = []
        var peers: [RawPeer] = []
        var transforms: [TLSTransform] = []
        for i in 0..<2 {
            let tcp = try await TCPConnection.connect(on: group.loops[0], to: listener.localAddress)
            let peer = RawPeer()
            let t: TLSTransform = try await group.loops[0].submit {
                peer.connection = tcp
                tcp.delegate = peer
                let t = try TLSTransform.attach(to: tcp, context: context, serverName: "localhost")
                tcp.startReading()
                tcp.write(contentsOf: [0, 0, 0, 2, 7, UInt8(i)])
                return t
            }
            tcps.append(tcp)
            peers.append(peer)
            transforms.append(t)
        }
        for (i, peer) in peers.enumerated() {
            try await eventually(10, "first echo \(i)") { peer.received.withLock { $0 } == [0, 0, 0, 2, 7, UInt8(i)] }
        }
        let shared = try await group.loops[0].submit { [transforms] in
            let io = group.loops[0].loopLocal(TLSIO.self) { TLSIO() }
            return transforms.allSatisfy { $0.uses(io) }
        }
        #expect(shared, "both sessions use the loop's BIO")
        // After a pause, the next bytes are read and written through the same BIO as before.
        try await Task.sleep(for: .milliseconds(300))
        let payloads: [[UInt8]] = [Array(repeating: 1, count: 40_000), Array(repeating: 2, count: 3)]
        for (i, payload) in payloads.enumerated() {
            let tcp = tcps[i]
            try await group.loops[0].submit {
                let n = payload.count
                tcp.write(contentsOf: [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload)
            }
        }
        for (i, peer) in peers.enumerated() {
            try await eventually(10, "second echo \(i)") { peer.received.withLock { $0.count } == 6 + 4 + payloads[i].count }
            #expect(peer.received.withLock { Array($0.suffix(payloads[i].count)) } == payloads[i])
        }
        for tcp in tcps { try await group.loops[0].submit { tcp.close() } }
        await listener.close()
        #expect(group.shutdownGracefully())
    }

    @Test func certificateReloadWithoutRestart() async throws {
        defer { certs.remove() }
        var serverConfig = UVTransportConfiguration()
        serverConfig.tls = try TLSContext(role: .server, configuration: .server(certificateFile: certs.serverCert, keyFile: certs.serverKey))
        let h = try await Harness.start(server: serverConfig, client: try clientConfig())
        let head = RequestHead(service: "s", endpoint: "e")
        #expect(try await withTimeout(10) { try await h.client.unary(to: h.address, head: head, message: [1]) }.status == .ok)
        // Reload with a certificate for another host: new connections present it (and this client refuses it).
        await h.server.reloadTLS(try TLSContext(role: .server, configuration: .server(certificateFile: certs.otherHostCert, keyFile: certs.serverKey)))
        try await eventually(5, "idle connection closed") { await h.client.poolStats(for: h.address)?.ready == 0 }
        do {
            _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: head, message: [2]) }
            Issue.record("the reloaded certificate should be in use")
        } catch let e as TransportError {
            #expect(e.message.contains("hostnameMismatch"), "\(e.message)")
        }
        await h.stop()
    }
}

/// Keeps every log record, for tests that check what the server logs.
final class CapturedLogs: @unchecked Sendable {
    let records = Mutex<[String]>([])
    var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(sink: self) }
    }
    var all: [String] { records.withLock { $0 } }
}

struct CapturingHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let text = "\(event.level) \(event.message) \((event.metadata ?? [:]).map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
        sink.records.withLock { $0.append(text) }
    }
}

@Suite("TLS refusals are logged", .serialized)
struct TLSLoggingTests {
    @Test func serverLogsRefusedHandshakesAndKeepsServing() async throws {
        let certs = try Certificates.make()
        defer { certs.remove() }
        let logs = CapturedLogs()
        var serverConfig = UVTransportConfiguration()
        serverConfig.tls = try TLSContext(role: .server, configuration: .server(certificateFile: certs.serverCert, keyFile: certs.serverKey))
        serverConfig.logger = logs.logger
        var wrong = UVTransportConfiguration()
        var wc = TLSConfiguration.client(trusting: certs.otherCA)
        wc.serverName = "localhost"
        wrong.tls = try TLSContext(role: .client, configuration: wc)
        let h = try await Harness.start(server: serverConfig, client: wrong)
        _ = try? await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        // Garbage instead of a ClientHello.
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        try await eventually(5, "both refusals logged") { logs.all.filter { $0.contains("TLS failed") }.count >= 2 }
        let lines = logs.all
        #expect(lines.contains { $0.contains("untrustedCertificate") }, "\(lines)")
        #expect(lines.contains { $0.contains("notTLS") }, "\(lines)")
        // A good client is still served.
        var good = UVTransportConfiguration()
        var gc = TLSConfiguration.client(trusting: certs.ca)
        gc.serverName = "localhost"
        good.tls = try TLSContext(role: .client, configuration: gc)
        let goodClient = UVClientTransport(group: h.clientGroup, configuration: good)
        let r = try await withTimeout(10) { try await goodClient.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [5]) }
        #expect(r.message == [5])
        await goodClient.shutdown()
        await h.stop()
    }
}
