import MicroEventLoop
import Testing

@Suite("SocketAddress and UVError")
struct SocketAddressTests {
    @Test("host:port and [v6]:port parse; description round-trips")
    func parse() throws {
        let a = try SocketAddress("127.0.0.1:8080")
        #expect(a.host == "127.0.0.1" && a.port == 8080)
        #expect(a.description == "127.0.0.1:8080")
        let b = try SocketAddress("[::1]:9000")
        #expect(b.host == "::1" && b.port == 9000)
        #expect(b.description == "[::1]:9000")
        #expect(try SocketAddress(b.description) == b)
        let c = try SocketAddress(":80")
        #expect(c.host == "127.0.0.1" && c.port == 80)
        let d = try SocketAddress(host: "localhost", port: 0)
        #expect(d.host == "127.0.0.1")
        #expect(try SocketAddress(host: "::", port: 65535).port == 65535)
    }

    @Test("bad addresses are refused with EINVAL", arguments: [
        "127.0.0.1", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:-1", "256.0.0.1:80",
        "example.com:80", "[::1]80", "[::1", "",
    ])
    func refused(text: String) {
        #expect(throws: UVError.self) { _ = try SocketAddress(text) }
    }

    @Test("UVError names its code and compares by code only")
    func uvError() {
        let e = UVError(code: UVError.connectionRefused, operation: "connect 1.2.3.4:5")
        #expect(e.name == "ECONNREFUSED")
        #expect(e.description.hasPrefix("connect 1.2.3.4:5: ECONNREFUSED"))
        #expect(e == UVError(code: UVError.connectionRefused, operation: "other"))
        #expect(e != UVError(code: UVError.connectionReset, operation: "connect 1.2.3.4:5"))
        #expect(UVError.connectionRefused == -111 && UVError.tooManyOpenFiles == -24 && UVError.brokenPipe == -32)
        #expect(UVError(code: UVError.timedOut, operation: "x").name == "ETIMEDOUT")
    }
}

@Suite("TCP over IPv6")
struct TCPIPv6Tests {
    @Test("listen on [::1]:0 and echo")
    func ipv6Echo() async throws {
        let group = EventLoopGroup(threads: 2)
        let accepted = Locked<[Locked<EchoStats>]>([])
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "::1", port: 0)) { c in
            let stats = Locked(EchoStats())
            accepted.withLock { $0.append(stats) }
            EchoHandler.serve(c, stats: stats)
        }
        #expect(listener.localAddress.host == "::1")
        #expect(listener.localAddress.port > 0)
        let client = try await TestClient.connect(on: group.loops[1], to: listener.localAddress)
        #expect(try await client.echo(Array("over v6".utf8)))
        let remote = try await client.connection.loop.submit { [c = client.connection] in c.remoteAddress }
        #expect(remote == listener.localAddress)
        #expect(accepted.value.count == 1)
        shutdownClean(group)
    }
}

@Suite("TCP: binding a busy port")
struct BusyPortTests {
    @Test("a second listener on a port in use fails with EADDRINUSE instead of sharing it")
    func busyPort() async throws {
        let group = EventLoopGroup(threads: 1)
        let first = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { $0.close() }
        do {
            _ = try await TCPListener.bind(loops: group.loops, address: first.localAddress) { $0.close() }
            Issue.record("the second bind should fail")
        } catch let e as UVError {
            #expect(e.code == UVError.addressInUse)
        }
        await first.close()
        #expect(group.shutdownGracefully())
    }
}
