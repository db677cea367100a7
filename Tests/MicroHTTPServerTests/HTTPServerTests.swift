import Foundation
import HTTPTypes
import MicroEventLoop
import MicroHTTPServer
import MicroTestSupport
import Testing

/// The HTTP server on loopback, driven by outside clients: Python's http.client and raw sockets, and curl.
@Suite struct HTTPServerTests {
    /// A server whose handler echoes method, path and body, and sleeps on /sleep/MS.
    static func start(_ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
                      arrived: AsyncStream<String>.Continuation? = nil) async throws -> (EventLoopGroup, HTTPServer) {
        var configuration = HTTPServerConfiguration()
        configure(&configuration)
        let group = EventLoopGroup(threads: 1)
        let server = try await HTTPServer.start(group: group, address: try SocketAddress("127.0.0.1:0"), configuration: configuration) { request in
            let path = request.head.path ?? ""
            arrived?.yield(path)
            if path.hasPrefix("/sleep/"), let ms = Int(path.dropFirst(7)) {
                try? await Task.sleep(for: .milliseconds(ms))
            }
            var fields = HTTPFields()
            fields[HTTPField.Name("X-Method")!] = request.head.method.rawValue
            return HTTPServerResponse(status: .ok, headerFields: fields, body: Array("\(path) \(request.body.count) ".utf8) + request.body)
        }
        return (group, server)
    }

    static func stop(_ group: EventLoopGroup, _ server: HTTPServer) async {
        await server.close(gracePeriod: .seconds(2))
        #expect(await group.shutdown(), "the loop closed clean")
    }

    func python(_ script: String, port: Int) async throws -> String {
        let r = try await runAsync("/usr/bin/python3", ["-c", "PORT = \(port)\n" + script], seconds: 30)
        #expect(r.status == 0, "python: \(r.output)")
        return r.output
    }

    @Test("keep-alive: 200 requests on one connection (http.client)")
    func keepAlive() async throws {
        let (group, server) = try await Self.start()
        let out = try await python("""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        for i in range(200):
            body = ("x" * i).encode()
            c.request("POST", "/echo/%d" % i, body=body)
            r = c.getresponse()
            data = r.read()
            assert r.status == 200, r.status
            assert data == ("/echo/%d %d " % (i, i)).encode() + body, data
            assert r.getheader("X-Method") == "POST"
        c.request("GET", "/last")
        r = c.getresponse(); r.read()
        print("ok", c.sock is not None, r.getheader("Date") is not None)
        """, port: server.localAddress.port)
        #expect(out.contains("ok True True"), "\(out)")
        await Self.stop(group, server)
    }

    @Test("pipelined requests are answered in order, also when the first is slow")
    func pipelined() async throws {
        let (group, server) = try await Self.start()
        let out = try await python("""
        import socket
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        reqs = b"GET /sleep/200 HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" + b"".join(b"GET /p%d HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" % i for i in range(20)) + b"GET /end HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n"
        s.sendall(reqs)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        bodies = [part.split(b"\\r\\n\\r\\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK")[1:]]
        print([b.split(b" ")[0].decode() for b in bodies])
        """, port: server.localAddress.port)
        let expected = ["/sleep/200"] + (0..<20).map { "/p\($0)" } + ["/end"]
        #expect(out.contains("\(expected)".replacingOccurrences(of: "\"", with: "'")), "\(out)")
        await Self.stop(group, server)
    }

    @Test("curl: POST, chunked upload, Expect: 100-continue, HEAD")
    func curl() async throws {
        let (group, server) = try await Self.start()
        let base = "http://127.0.0.1:\(server.localAddress.port)"
        let post = try await runAsync("/usr/bin/curl", ["-sS", "-d", "hello", "\(base)/post"])
        #expect(post.output == "/post 5 hello", "\(post.output)")
        let chunked = try await runAsync("/usr/bin/curl", ["-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunky", "\(base)/chunked"])
        #expect(chunked.output == "/chunked 6 chunky", "\(chunked.output)")
        // curl sends Expect: 100-continue for bodies over 1 MiB and waits for the 100 before sending.
        let big = String(repeating: "z", count: 1_100_000)
        let dir = try makeTemporaryDirectory("http-server")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try big.write(toFile: dir + "/big", atomically: true, encoding: .utf8)
        // The echo goes to a file: a megabyte would fill the pipe that runAsync reads only at the end.
        let expect = try await runAsync("/usr/bin/curl", ["-sS", "-v", "-o", dir + "/echo", "--data-binary", "@\(dir)/big", "\(base)/big"])
        #expect(expect.output.contains("HTTP/1.1 100 Continue"), "\(expect.output.prefix(2000))")
        let echo = try Data(contentsOf: URL(fileURLWithPath: dir + "/echo"))
        #expect(echo.count == 1_100_000 + "/big 1100000 ".utf8.count && echo.starts(with: Data("/big 1100000 zzz".utf8)))
        let head = try await runAsync("/usr/bin/curl", ["-sS", "-I", "\(base)/head"])
        #expect(head.output.contains("HTTP/1.1 200 OK") && head.output.contains("Content-Length: 8"), "\(head.output)")
        await Self.stop(group, server)
    }

    @Test("malformed and oversized requests: their status, then the connection closes")
    func refusals() async throws {
        let (group, server) = try await Self.start { $0.limits.maxBodyBytes = 1000; $0.limits.maxHeaderBytes = 2000 }
        let out = try await python("""
        import socket
        def send(raw):
            s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
            s.sendall(raw)
            data = b""
            while True:
                try: chunk = s.recv(65536)
                except ConnectionResetError: break
                if not chunk: break
                data += chunk
            return data.split(b"\\r\\n")[0].decode() + " closed"
        print(send(b"garbage\\r\\n\\r\\n"))
        print(send(b"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xfc\\x03\\x03" + b"\\x00" * 100))
        print(send(b"POST / HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 5000\\r\\n\\r\\n"))
        print(send(b"GET / HTTP/1.1\\r\\nHost: a\\r\\nX: " + b"y" * 5000 + b"\\r\\n\\r\\n"))
        print(send(b"GET /" + b"u" * 10000 + b" HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"))
        print(send(b"GET / HTTP/3.0\\r\\nHost: a\\r\\n\\r\\n"))
        """, port: server.localAddress.port)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines == ["HTTP/1.1 400 Bad Request closed", "HTTP/1.1 400 Bad Request closed", "HTTP/1.1 413 Content Too Large closed",
                          "HTTP/1.1 431 Request Header Fields Too Large closed", "HTTP/1.1 414 URI Too Long closed",
                          "HTTP/1.1 505 HTTP Version Not Supported closed"], "\(out)")
        await Self.stop(group, server)
    }

    @Test("a slow request gets 408; an idle connection is closed; a silent one too")
    func timeouts() async throws {
        let (group, server) = try await Self.start { $0.requestTimeout = .milliseconds(300); $0.idleTimeout = .milliseconds(400) }
        let out = try await python("""
        import socket, time
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"GET / HTTP/1.1\\r\\nHo")
        t = time.time(); data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        print(data.split(b"\\r\\n")[0].decode(), "after", round(time.time() - t, 1) >= 0.2)
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"GET /a HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        first = s.recv(65536)
        t = time.time()
        rest = s.recv(65536)
        print("idle closed", first.startswith(b"HTTP/1.1 200"), rest == b"", round(time.time() - t, 1) >= 0.3)
        """, port: server.localAddress.port)
        #expect(out.contains("HTTP/1.1 408 Request Timeout after True"), "\(out)")
        #expect(out.contains("idle closed True True True"), "\(out)")
        try await eventually(5, "connections closed") { server.connectionCount == 0 }
        await Self.stop(group, server)
    }

    @Test("over the connection limit: 503 and closed")
    func connectionLimit() async throws {
        let (group, server) = try await Self.start { $0.maxConnections = 2 }
        let out = try await python("""
        import socket, time
        held = [socket.create_connection(("127.0.0.1", PORT), timeout=10) for _ in range(2)]
        time.sleep(0.2)
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
        print(data.split(b"\\r\\n")[0].decode())
        """, port: server.localAddress.port)
        #expect(out.contains("HTTP/1.1 503 Service Unavailable"), "\(out)")
        await Self.stop(group, server)
    }

    @Test("close lets the response under way finish")
    func gracefulClose() async throws {
        let (arrivals, arrived) = AsyncStream<String>.makeStream()
        let (group, server) = try await Self.start(arrived: arrived)
        let port = server.localAddress.port
        async let reply = runAsync("/usr/bin/curl", ["-sS", "http://127.0.0.1:\(port)/sleep/300"], seconds: 120)
        // The handler has the request (an event, not a poll: under parallel tests a poll can miss the 300 ms).
        var iterator = arrivals.makeAsyncIterator()
        #expect(await iterator.next() == "/sleep/300")
        await server.close(gracePeriod: .seconds(30))
        #expect(try await reply.output == "/sleep/300 0 ")
        #expect(await group.shutdown())
    }

}
