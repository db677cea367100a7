import CLibUV
import MicroEventLoop
import MicroUVTransport
import Synchronization
import Testing

@Suite("Plain length-prefixed mode")
struct LengthPrefixedConnectionTests {
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        let n = UInt32(payload.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload
    }

    func withEchoServer(_ body: (SocketAddress, EventLoopGroup) async throws -> Void) async throws {
        let group = EventLoopGroup(threads: 1)
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) {
            LengthPrefixedConnection.echo($0, maxPayload: 4 << 20)
        }
        try await body(listener.localAddress, group)
        await listener.close()
        #expect(group.shutdownGracefully())
    }

    @Test func echoesDripFedManyAndLargeFrames() async throws {
        try await withEchoServer { address, group in
            let peer = try await RawPeer.connect(group.loops[0], address)
            var expected: [UInt8] = []
            // Byte by byte, with pauses so that reads really split frames.
            let small = Self.frame(Array("drip".utf8)) + Self.frame([])
            for b in small {
                try await peer.send([b])
                try await Task.sleep(for: .milliseconds(1))
            }
            expected += small
            // Many frames in one write.
            var burst: [UInt8] = []
            for i in 0..<500 { burst += Self.frame([UInt8](repeating: UInt8(i & 0xFF), count: i % 37)) }
            try await peer.send(burst)
            expected += burst
            // A 1 MiB frame (read straight into its own buffer).
            let big = Self.frame((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try await peer.send(big)
            expected += big
            let want = expected
            try await eventually(10, "all echoed") { peer.received.withLock { $0.count } >= want.count }
            let got = peer.received.withLock { $0 }
            #expect(got.count == want.count)
            #expect(got == want, "echo is byte-exact and in order")
        }
    }

    @Test func oversizedFrameClosesTheConnection() async throws {
        try await withEchoServer { address, group in
            let peer = try await RawPeer.connect(group.loops[0], address)
            try await peer.send([0x10, 0, 0, 0, 1, 2, 3])  // 256 MiB announced, above the 4 MiB limit
            try await eventually(5, "closed") { peer.isClosed }
            // The server keeps serving others.
            let other = try await RawPeer.connect(group.loops[0], address)
            try await other.send(Self.frame([1, 2, 3]))
            try await eventually(5, "echo") { other.received.withLock { $0.count } == 7 }
        }
    }

    @Test func customFramesAndSend() async throws {
        let group = EventLoopGroup(threads: 1)
        // A server that answers each frame with its length as text.
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            LengthPrefixedConnection(tcp) { c, payload in
                let answer = Array(String(payload.count).utf8)
                answer.withUnsafeBytes { c.send($0) }
            }
        }
        let peer = try await RawPeer.connect(group.loops[0], listener.localAddress)
        try await peer.send(Self.frame([UInt8](repeating: 1, count: 12345)))
        let want = Self.frame(Array("12345".utf8))
        try await eventually(5, "answer") { peer.received.withLock { $0 } == want }
        await listener.close()
        #expect(group.shutdownGracefully())
    }

    static func close(_ peer: RawPeer) async throws {
        let c = peer.connection!
        try await c.loop.submit { c.close() }
    }

    /// A handler shared by every connection: counts frames and closes, answers each frame with its length.
    final class CountingHandler: LengthPrefixedConnectionHandler, @unchecked Sendable {
        let frames = Mutex(0)
        let closes = Mutex(0)
        override func connection(_ connection: LengthPrefixedConnection, didReceive payload: UnsafeRawBufferPointer) {
            frames.withLock { $0 += 1 }
            var n = UInt32(payload.count).bigEndian
            withUnsafeBytes(of: &n) { connection.send($0) }
        }
        override func connectionDidClose(_ connection: LengthPrefixedConnection, error: UVError?) {
            closes.withLock { $0 += 1 }
        }
    }

    @Test func oneHandlerServesManyConnections() async throws {
        let group = EventLoopGroup(threads: 2)
        let handler = CountingHandler()
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            LengthPrefixedConnection(tcp, handler: handler)
        }
        var peers: [RawPeer] = []
        for i in 0..<4 {
            let peer = try await RawPeer.connect(group.loops[i % 2], listener.localAddress)
            try await peer.send(Self.frame([UInt8](repeating: 7, count: 100 + i)) + Self.frame([]))
            peers.append(peer)
        }
        for (i, peer) in peers.enumerated() {
            let want = Self.frame([0, 0, 0, UInt8(100 + i)]) + Self.frame([0, 0, 0, 0])
            try await eventually(5, "answers") { peer.received.withLock { $0 } == want }
        }
        #expect(handler.frames.withLock { $0 } == 8)
        for peer in peers { try await Self.close(peer) }
        try await eventually(5, "closes reported") { handler.closes.withLock { $0 } == 4 }
        await listener.close()
        #expect(group.shutdownGracefully())
    }

    #if os(Linux)
    /// An idle connection in this mode is a `TCPConnection`, its libuv handle and a `LengthPrefixedConnection`:
    /// the two objects must stay within 80- and 64-byte heap blocks (glibc: usable size 72 and 56).
    @Test func idleConnectionObjectsStaySmall() async throws {
        let group = EventLoopGroup(threads: 1)
        let sizes = Mutex<(tcp: Int, framed: Int)?>(nil)
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            let framed = LengthPrefixedConnection.echo(tcp)
            let s = (tcp: micro_malloc_usable_size(Unmanaged.passUnretained(tcp).toOpaque()),
                     framed: micro_malloc_usable_size(Unmanaged.passUnretained(framed).toOpaque()))
            sizes.withLock { $0 = s }
        }
        let peer = try await RawPeer.connect(group.loops[0], listener.localAddress)
        try await eventually(5, "accepted") { sizes.withLock { $0 != nil } }
        let s = sizes.withLock { $0 }!
        #expect(s.tcp <= 72, "TCPConnection takes an 80-byte block")
        #expect(s.framed <= 56, "LengthPrefixedConnection takes a 64-byte block")
        try await Self.close(peer)
        await listener.close()
        #expect(group.shutdownGracefully())
    }
    #endif
}
