import Foundation
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroTLS
import MicroUVTransport
import Synchronization
import Testing

/// Peers that attack the server's memory, descriptors and patience: each is cut off with a clear reason, and
/// the server goes on serving everyone else.
@Suite("Hostile peers")
struct HostilePeerTests {
    static let preface = ConnectionPreface.bytes
    static let settings = encode { FrameEncoder.encodeSettings(Settings(), into: $0) }

    /// The first DRAIN a raw peer received: its code and reason.
    static func drain(_ peer: RawPeer) -> (ErrorCode, String)? {
        for (type, _, payload) in peer.frames() where type == .drain {
            let code = ErrorCode(rawValue: payload.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) })
            let reasonLength = Int(payload[8]) << 8 | Int(payload[9])
            return (code, String(decoding: payload[10..<(10 + reasonLength)], as: UTF8.self))
        }
        return nil
    }

    /// A frame header announcing `length` bytes of DATA on stream 1.
    static func header(length: UInt32) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: FrameHeader.size)
        header.withUnsafeMutableBytes { FrameHeader(length: length, type: .data, streamID: 1).write(to: $0.baseAddress!) }
        return header
    }

    /// Sends one byte at a time, every 20 ms, until the peer is closed (at most 30 s).
    static func dribble(_ peer: RawPeer) async throws {
        let giveUp = ContinuousClock.now + .seconds(30)
        while !peer.isClosed && ContinuousClock.now < giveUp {
            try? await peer.send([0x55])
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func serverStillServes(_ h: Harness) async throws {
        let r = try await withTimeout(10) {
            try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [42])
        }
        #expect(r.status == .ok)
    }

    @Test("a frame dribbled a byte at a time is cut off with FRAME_TIMEOUT once its time is up")
    func dribbledFrameTimesOut() async throws {
        var config = ProtocolErrorTests.patient
        config.frameTimeoutMilliseconds = 300
        config.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(server: config)
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        let started = ContinuousClock.now
        try await peer.send(Self.preface + Self.settings + Array(Self.header(length: 1000).prefix(5)))
        try await Self.dribble(peer)
        #expect(peer.isClosed)
        #expect(ContinuousClock.now - started >= .milliseconds(300), "not before the frame timeout")
        let drain = Self.drain(peer)
        #expect(drain?.0 == .frameTimeout, "\(String(describing: drain))")
        #expect(drain?.1.contains("incomplete") == true)
        try await Self.serverStillServes(h)
        await h.stop()
    }

    @Test("bytes are no sign of life: a peer dribbling a frame gets a PING and, unanswered, PING_TIMEOUT")
    func bytesAreNotLiveness() async throws {
        var config = ProtocolErrorTests.patient
        config.frameTimeoutMilliseconds = 0
        config.keepaliveIntervalMilliseconds = 200
        config.pingTimeoutMilliseconds = 300
        config.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(server: config)
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(Self.preface + Self.settings + Array(Self.header(length: 1000).prefix(5)))
        try await Self.dribble(peer)
        #expect(peer.isClosed, "a peer that only dribbles bytes must not stay forever")
        #expect(peer.frames().contains { $0.0 == .ping }, "the server asked for a sign of life")
        #expect(Self.drain(peer)?.0 == .pingTimeout)
        await h.stop()
    }

    @Test("incomplete frames beyond the server's budget: the connection that needs more is closed with RESOURCE_LIMIT")
    func inboundBudget() async throws {
        var config = ProtocolErrorTests.patient
        config.settings.maxFrameSize = 1 << 20
        config.maxBufferedInboundBytes = 1 << 20
        let h = try await Harness.start(server: config)
        var peers: [RawPeer] = []
        // Six peers each send 400 KiB of a 1 MiB frame they never finish: 2.4 MiB against a budget of 1 MiB.
        for _ in 0..<6 {
            let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
            try await peer.send(Self.preface + Self.settings + Self.header(length: 1 << 20) + [UInt8](repeating: 7, count: 400 << 10))
            peers.append(peer)
        }
        let all = peers
        try await eventually(10, "a peer is cut off") { all.contains { $0.isClosed } }
        let refused = peers.filter { $0.isClosed }
        #expect(refused.allSatisfy { Self.drain($0)?.0 == .resourceLimit }, "\(refused.map { Self.drain($0).map { "\($0)" } ?? "no DRAIN" })")
        #expect(refused.count < peers.count, "peers within the budget stay")
        try await Self.serverStillServes(h)
        for p in peers where !p.isClosed { try await p.connection.loop.submit { p.connection.close() } }
        await h.stop()
    }

    @Test("a connection that breaks the protocol while answers are still queued for its silent peer is closed")
    func failedConnectionWithQueuedAnswers() async throws {
        var config = ProtocolErrorTests.patient
        config.pingTimeoutMilliseconds = 200
        config.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(server: config)
        let port = try SocketAddress(h.address).port
        // Requests whose echoed answers (64 x 64 KiB) go to a peer that never reads (a 4 KiB receive buffer),
        // then a frame that breaks the protocol. (When the answers cannot leave at all, housekeeping closes the
        // connection after the ping timeout instead of waiting for its DRAIN to flush.)
        let head = RequestHead(service: "s", endpoint: "e")
        let message = [UInt8](repeating: 3, count: 64 << 10)
        var bytes = Self.preface + Self.settings
        for i in 0..<64 {
            bytes += message.withUnsafeBytes { m in
                encode({ FrameEncoder.encodeRequest(stream: UInt32(2 * i + 1), head, message: m, endStream: true, into: $0) }, capacity: 70 << 10)
            }
        }
        bytes += Self.header(length: 0).prefix(4) + [FrameType.data.rawValue, 0, 0, 0, 0, 0]  // DATA on stream 0
        let silent = try RawSocket(port: port, sending: [], receiveBuffer: 4096)
        try await silent.sendAll(bytes)
        try await eventually(20, "the failed connection is closed although its peer reads nothing") {
            await h.server.connectionCount() == 0
        }
        try await Self.serverStillServes(h)
        await h.stop()
    }

    @Test("a client address beyond its connection limit is told DRAIN RESOURCE_LIMIT before any stream; a freed slot is reused")
    func connectionLimitPerAddress() async throws {
        var config = ProtocolErrorTests.patient
        config.maxConnectionsPerClientAddress = 2
        let h = try await Harness.start(server: config)
        var peers: [RawPeer] = []
        for _ in 0..<2 {
            let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
            try await peer.send(Self.preface + Self.settings)
            try await eventually(10, "the server's SETTINGS") { peer.frames().contains { $0.0 == .settings } }
            peers.append(peer)
        }
        let third = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await eventually(10, "the third connection is closed") { third.isClosed }
        let drain = Self.drain(third)
        #expect(drain?.0 == .resourceLimit)
        #expect(drain?.1.contains("127.0.0.1") == true, "\(String(describing: drain))")
        #expect(peers.allSatisfy { !$0.isClosed })
        // One admitted peer leaves: a new connection takes its slot (the client transport's own call).
        let (one, two) = (peers[0], peers[1])
        try await one.connection.loop.submit { one.connection.close() }
        try await eventually(10, "a slot is free again") {
            (try? await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [1]))?.status == .ok
        }
        try await two.connection.loop.submit { two.connection.close() }
        await h.stop()
    }

    @Test("a server-wide connection limit refuses the connection beyond it the same way")
    func connectionLimitTotal() async throws {
        var config = ProtocolErrorTests.patient
        config.maxConnections = 1
        let h = try await Harness.start(server: config)
        let first = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await first.send(Self.preface + Self.settings)
        try await eventually(10, "the server's SETTINGS") { first.frames().contains { $0.0 == .settings } }
        let second = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await eventually(10, "the second connection is closed") { second.isClosed }
        #expect(Self.drain(second)?.0 == .resourceLimit)
        #expect(!first.isClosed)
        try await first.connection.loop.submit { first.connection.close() }
        await h.stop()
    }

    @Test("many connections announcing maximum-size frames with 16 bytes each, under ulimit -v 2 GiB: the echo server lives, a few KiB each")
    func announcedFramesReserveNothing() async throws {
        let dir = try makeTemporaryDirectory("hostile-echo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Port 0 and the port it prints: a port picked beforehand could be taken meanwhile by another test's server,
        // and with SO_REUSEPORT both would listen on it.
        let server = try ChildProcess("/bin/sh", ["-c", "ulimit -v 2097152 && exec '\(productsDirectory())/micro-echo' --port 0"],
                                      logPath: dir + "/echo.log")
        defer { server.kill() }
        try await eventually(15, "micro-echo listens") { server.output.contains("listening on") }
        guard let line = server.output.split(separator: "\n").first(where: { $0.contains("listening on") }),
              let port = line.split(separator: " ").dropFirst(3).first?.split(separator: ":").last.flatMap({ Int($0) }) else {
            Issue.record("no port in \(server.output)")
            return
        }

        // A 16 MiB frame announced, 16 bytes of it sent, on every connection.
        var announce = [UInt8](repeating: 0, count: 4)
        announce.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(16 << 20).bigEndian, as: UInt32.self) }
        announce += [UInt8](repeating: 1, count: 16)
        let hello = announce
        // Blocking connects run on a thread of their own, never on the shared pool (a full backlog makes one wait).
        var held = try await onOwnThread { try (0..<20).map { _ in try RawSocket(port: port, sending: hello) } }
        // Every connection before it was read once the echo answers a later one (one loop per core, in order).
        let warm = try RawSocket(port: port, sending: [0, 0, 0, 1, 5])
        #expect(try await warm.receive(5) == [0, 0, 0, 1, 5])
        let before = try Self.virtualMemory(server.pid)
        let count = 1000
        held += try await onOwnThread { try (0..<count).map { _ in try RawSocket(port: port, sending: hello) } }
        let probe = try RawSocket(port: port, sending: [0, 0, 0, 3, 9, 8, 7])
        #expect(try await probe.receive(7) == [0, 0, 0, 3, 9, 8, 7])
        let exited = await server.waitForExit(seconds: 0)
        #expect(!exited, "the server died: \(server.output)")
        let after = try Self.virtualMemory(server.pid)
        let perConnection = (after - before) / count
        print("micro-echo under ulimit -v 2 GiB: \(count) connections announcing 16 MiB frames took VmSize from \(before >> 10) to \(after >> 10) KiB (\(perConnection) B each)")
        #expect(perConnection < 64 << 10, "VmSize grew by \(perConnection) bytes per connection")
        held.removeAll()
    }

    @Test("TLS 1.2 only with ECDHE and AEAD: with an RSA certificate, RSA key exchange and CBC suites are refused, the AEAD ones accepted; TLS 1.3 alone when configured")
    func tlsPolicy() async throws {
        let dir = try makeTemporaryDirectory("hostile-tls")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try await runAsync("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/rsa.key",
                                                           "-out", dir + "/rsa.pem", "-days", "1", "-subj", "/CN=localhost"])
        #expect(made.status == 0, "\(made.output)")
        for minimum in [TLSConfiguration.Version.tls12, .tls13] {
            var c = TLSConfiguration.server(certificateFile: dir + "/rsa.pem", keyFile: dir + "/rsa.key")
            c.minimumVersion = minimum
            let context = try TLSContext(role: .server, configuration: c)
            let group = EventLoopGroup(threads: 1)
            let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
                do { try TLSTransform.attach(to: tcp, context: context) } catch { tcp.close(); return }
                LengthPrefixedConnection.echo(tcp)
            }
            let port = listener.localAddress.port
            func handshake(_ args: [String]) async throws -> (status: Int32, output: String) {
                try await runAsync("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-brief"] + args, input: Data())
            }
            let weak = ["AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
                        "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA", "CAMELLIA128-SHA256", "DHE-RSA-AES128-GCM-SHA256"]
            for suite in weak {
                let r = try await handshake(["-tls1_2", "-cipher", suite])
                #expect(r.status != 0, "\(suite) must be refused: \(r.output)")
            }
            for suite in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"] {
                let r = try await handshake(["-tls1_2", "-cipher", suite])
                if minimum == .tls12 {
                    #expect(r.status == 0 && r.output.contains(suite), "\(suite) must be accepted: \(r.output)")
                } else {
                    #expect(r.status != 0, "TLS 1.2 must be refused when the minimum is 1.3: \(r.output)")
                }
            }
            let modern = try await handshake(["-tls1_3"])
            #expect(modern.status == 0 && modern.output.contains("TLSv1.3"), "\(modern.output)")
            await listener.close()
            #expect(group.shutdownGracefully())
        }
    }

    /// VmSize of a process, in bytes.
    static func virtualMemory(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmSize:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw TestProcessError(description: "no VmSize for \(pid)")
        }
        return kb << 10
    }
}

/// Runs blocking work (socket connects) on a thread of its own, so that no thread of the shared pool waits.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A loopback TCP socket for load from the test itself; its connect blocks (use ``onOwnThread(_:)`` for many),
/// its sends and receives poll. Closed on deinit. `@unchecked Sendable`: one descriptor, used by one task at a time.
final class RawSocket: @unchecked Sendable {
    let fd: Int32

    init(port: Int, sending bytes: [UInt8] = [], receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestProcessError(description: "socket: \(errno)") }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        } }
        guard rc == 0 else {
            close(fd)
            throw TestProcessError(description: "connect: \(errno)")
        }
        if !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard sent == bytes.count else {
                close(fd)
                throw TestProcessError(description: "send: \(errno)")
            }
        }
    }

    /// Sends all of `bytes` without blocking a thread: what the socket does not take now is sent as it drains
    /// (gives up after 10 s).
    func sendAll(_ bytes: [UInt8]) async throws {
        var sent = 0
        let giveUp = ContinuousClock.now + .seconds(10)
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                sent += n
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK, ContinuousClock.now < giveUp else {
                throw TestProcessError(description: "send: \(n) \(errno)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Reads exactly `count` bytes, polling without blocking (gives up after 10 s).
    func receive(_ count: Int) async throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        let giveUp = ContinuousClock.now + .seconds(10)
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                got += n
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK, ContinuousClock.now < giveUp else {
                throw TestProcessError(description: "recv: \(n) \(errno)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return out
    }

    deinit { close(fd) }
}
