import MicroEventLoop
import MicroHTTP
import Synchronization
import Testing

/// A loopback server that answers each connection with `reply` (after reading the request head), or never.
final class CannedServer: TCPConnectionDelegate, @unchecked Sendable {
    let reply: [UInt8]?
    var received: [UInt8] = []  // loop-confined
    init(reply: String?) { self.reply = reply.map { Array($0.utf8) } }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        received += bytes
        if let reply, received.count >= 4, received.suffix(4) == [13, 10, 13, 10] || received.contains(UInt8(ascii: "}")) {
            connection.write(contentsOf: reply)
            connection.closeAfterFlush()
        }
    }
    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {}

    static func start(loop: EventLoop, reply: String?) async throws -> TCPListener {
        try await TCPListener.bind(loops: [loop], address: try SocketAddress(host: "127.0.0.1", port: 0)) { connection in
            connection.delegate = CannedServer(reply: reply)
            connection.startReading()
        }
    }
}

@Suite(.serialized) struct HTTPClientTests {
    @Test func postAndChunkedAnswer() async throws {
        let loop = EventLoop()
        defer { _ = loop.shutdownGracefully() }
        let server = try await CannedServer.start(loop: loop, reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        let client = HTTPClient(loop: loop)
        let response = try await client.execute(HTTPRequest(method: "POST", path: "/x", body: Array("{}".utf8)),
                                                to: server.localAddress, timeout: .seconds(5))
        #expect(response.status == 200)
        #expect(response.body == Array("abc".utf8))
        await server.close()
    }

    @Test func deadlineWhenTheServerNeverAnswers() async throws {
        let loop = EventLoop()
        defer { _ = loop.shutdownGracefully() }
        let server = try await CannedServer.start(loop: loop, reply: nil)
        let client = HTTPClient(loop: loop)
        let start = ContinuousClock.now
        await #expect(throws: HTTPError.timedOut) {
            _ = try await client.execute(HTTPRequest(path: "/"), to: server.localAddress, timeout: .milliseconds(200))
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        await server.close()
    }

    @Test func refusedConnection() async throws {
        let loop = EventLoop()
        defer { _ = loop.shutdownGracefully() }
        let server = try await CannedServer.start(loop: loop, reply: nil)
        let address = server.localAddress
        await server.close()
        let client = HTTPClient(loop: loop)
        await #expect {
            _ = try await client.execute(HTTPRequest(path: "/"), to: address, timeout: .seconds(2))
        } throws: { error in
            if case HTTPError.connectFailed = error { return true } else { return false }
        }
    }

    @Test func streamingBodyCanBeCancelled() async throws {
        let loop = EventLoop()
        defer { _ = loop.shutdownGracefully() }
        // A chunked response that never ends.
        let server = try await CannedServer.start(loop: loop, reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n")
        let client = HTTPClient(loop: loop)
        let response = try await client.stream(HTTPRequest(path: "/watch"), to: server.localAddress, headTimeout: .seconds(2))
        #expect(response.head.status == 200)
        var it = response.body.makeAsyncIterator()
        let first = try await it.next()
        #expect(first == Array("{}".utf8))
        // closeAfterFlush ends the server side: the unfinished chunked body is an error, not a clean end.
        await #expect(throws: HTTPError.self) { while try await it.next() != nil {} }
        response.cancel()
        await server.close()
    }
}
