import Foundation
import Micro
import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Prometheus
import Testing

/// The sidecar in front of a service on loopback, driven by Python's http.client, raw sockets and curl.
@Suite struct SidecarTests {
    /// A greeter service and a sidecar, sharing a local registry directory.
    final class Fixture: Sendable {
        let directory: String
        let backend: MicroService
        let front: MicroService
        let sidecar: Sidecar
        var port: Int { sidecar.localAddress.port }

        init(configure: (inout SidecarConfiguration) -> Void = { _ in }) async throws {
            directory = try makeTemporaryDirectory("sidecar")
            var options = ServiceOptions()
            options.registry.kind = .local
            options.registry.directory = directory
            options.broker = .none
            options.transportThreads = 1
            backend = try MicroService(name: "greeter", options: options)
            backend.server.handle("Greeter.Hello", Hello.self) { hello, _ in Greeting(text: "Hello, \(hello.name)!") }
            backend.server.handle("Echo.Call") { request, _ in Response(body: request.body, metadata: request.metadata) }
            backend.server.handle("Sleep.Call") { request, _ in
                try await Task.sleep(for: .milliseconds(Int(String(decoding: request.body, as: UTF8.self)) ?? 0))
                return Response(body: Array("\"slept\"".utf8))
            }
            backend.server.handle("Deny.Call") { _, _ in throw RPCError(.permissionDenied, "no") }
            try await backend.start()
            let metrics = MetricsRegistry()
            var client = ClientConfiguration()
            client.use { MetricsMiddleware(factory: metrics.factory) }
            front = try MicroService(name: "sidecar", options: options, client: client, metrics: metrics)
            var configuration = SidecarConfiguration()
            configuration.address = "127.0.0.1:0"
            configure(&configuration)
            sidecar = try await Sidecar.start(service: front, configuration: configuration)
        }

        func python(_ script: String) async throws -> String {
            let r = try await runAsync("/usr/bin/python3", ["-c", "PORT = \(port)\n" + script], seconds: 60)
            #expect(r.status == 0, "python: \(r.output)")
            return r.output
        }

        func stop() async {
            await sidecar.close()
            await front.close()
            await backend.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("calls, errors and their statuses, metadata, deadlines (http.client, keep-alive)")
    func calls() async throws {
        let f = try await Fixture()
        let out = try await f.python("""
        import http.client, json, time
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
        def call(method, path, body=None, headers={}):
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read().decode(), r
        # Many calls on one kept-alive connection.
        for i in range(300):
            s, b, _ = call("POST", "/greeter/Greeter.Hello", json.dumps({"name": "n%d" % i}), {"Content-Type": "application/json"})
            assert s == 200 and json.loads(b) == {"text": "Hello, n%d!" % i}, (s, b)
        print("keepalive ok")
        s, b, r = call("POST", "/greeter/Echo.Call", b"\\x00\\x01raw", {"Content-Type": "application/octet-stream", "X-Micro-Meta-Tenant": "acme"})
        print("raw", s, b == "\\x00\\x01raw", r.getheader("X-Micro-Meta-Tenant"), r.getheader("Content-Type"))
        print("badjson", *call("POST", "/greeter/Greeter.Hello", "{nope", {"Content-Type": "application/json"})[:2])
        print("unknown", *call("POST", "/nosuch/X.Y", "{}")[:2])
        print("endpoint", call("POST", "/greeter/No.Such", "{}")[0])
        print("denied", call("POST", "/greeter/Deny.Call", "{}")[0])
        print("decode", call("POST", "/greeter/Greeter.Hello", '{"nom": 1}')[0])
        t = time.time()
        s, b, _ = call("POST", "/greeter/Sleep.Call", "2000", {"X-Micro-Timeout": "150ms"})
        print("timeout", s, json.loads(b)["code"], time.time() - t < 1.5)
        past = str(int(time.time() * 1000) - 1000)
        print("expired", *call("POST", "/greeter/Sleep.Call", "0", {"X-Micro-Deadline": past})[:2])
        print("badtimeout", call("POST", "/greeter/Sleep.Call", "0", {"X-Micro-Timeout": "soon"})[0])
        print("media", call("POST", "/greeter/Greeter.Hello", "x", {"Content-Type": "text/html"})[0])
        print("method", call("GET", "/greeter/Greeter.Hello")[0], call("DELETE", "/health")[0])
        print("noroute", call("GET", "/nothing")[0])
        print("health", *call("GET", "/health")[:2])
        s, b, _ = call("GET", "/services")
        print("services", s, [x["name"] for x in json.loads(b)])
        """)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.contains("keepalive ok"), "\(out)")
        #expect(lines.contains("raw 200 True acme application/octet-stream"), "\(out)")
        #expect(lines.contains(#"badjson 400 {"code":"invalidArgument","status":3,"message":"the body is not valid JSON"}"#), "\(out)")
        #expect(lines.contains(#"unknown 404 {"code":"notFound","status":5,"message":"unknown service nosuch"}"#), "\(out)")
        #expect(lines.contains("endpoint 501"), "\(out)")
        #expect(lines.contains("denied 403"), "\(out)")
        #expect(lines.contains("decode 400"), "\(out)")
        #expect(lines.contains("timeout 504 deadlineExceeded True"), "\(out)")
        #expect(lines.contains(#"expired 504 {"code":"deadlineExceeded","status":4,"message":"the deadline passed before the call"}"#), "\(out)")
        #expect(lines.contains("badtimeout 400"), "\(out)")
        #expect(lines.contains("media 415"), "\(out)")
        #expect(lines.contains("method 405 405"), "\(out)")
        #expect(lines.contains("noroute 404"), "\(out)")
        #expect(lines.contains(#"health 200 {"status":"SERVING"}"#), "\(out)")
        #expect(lines.contains("services 200 ['greeter']"), "\(out)")
        await f.stop()
    }

    @Test("/metrics is Prometheus text with the calls made through the sidecar")
    func metrics() async throws {
        let f = try await Fixture()
        let out = try await f.python("""
        import http.client, re
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=20)
        for i in range(7):
            c.request("POST", "/greeter/Greeter.Hello", '{"name": "x"}'); c.getresponse().read()
        c.request("POST", "/greeter/Deny.Call", "{}"); c.getresponse().read()
        c.request("GET", "/metrics")
        r = c.getresponse(); text = r.read().decode()
        assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), r.getheader("Content-Type")
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"): continue
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{[^}]*\\})? ([-+0-9.eEInfNa]+)$', line)
            assert m, "not exposition format: " + line
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        print("hello", samples.get('micro_client_calls_total{service="greeter",endpoint="Greeter.Hello"}'))
        print("denied", samples.get('micro_client_errors_total{service="greeter",endpoint="Deny.Call",code="permissionDenied"}'))
        print("timed", samples.get('micro_client_call_duration_count{service="greeter",endpoint="Greeter.Hello"}'),
              samples.get('micro_client_call_duration_bucket{service="greeter",endpoint="Greeter.Hello",le="+Inf"}'))
        """)
        #expect(out.contains("hello 7.0"), "\(out)")
        #expect(out.contains("denied 1.0"), "\(out)")
        #expect(out.contains("timed 7.0 7.0"), "\(out)")
        await f.stop()
    }

    @Test("pipelined calls are answered in order; malformed and oversized requests are refused and closed")
    func pipelinedAndHostile() async throws {
        let f = try await Fixture { $0.http.limits.maxBodyBytes = 1024 }
        let out = try await f.python("""
        import socket, json
        def exchange(raw):
            s = socket.create_connection(("127.0.0.1", PORT), timeout=20)
            s.sendall(raw)
            data = b""
            while True:
                try: chunk = s.recv(65536)
                except ConnectionResetError: break
                if not chunk: break
                data += chunk
            return data
        reqs = b""
        for i in range(10):
            body = json.dumps({"name": "p%d" % i}).encode()
            reqs += b"POST /greeter/Greeter.Hello HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body
        reqs += b"GET /health HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n"
        data = exchange(reqs)
        bodies = [p.split(b"\\r\\n\\r\\n", 1)[1] for p in data.split(b"HTTP/1.1 200 OK")[1:]]
        print("pipelined", [json.loads(b).get("text", b.decode()) for b in bodies])
        print("malformed", exchange(b"POST /greeter/Greeter.Hello HTTP/1.1\\r\\nContent-Length: 2\\r\\n\\r\\n{}").split(b"\\r\\n")[0].decode())
        print("oversized", exchange(b"POST /greeter/Echo.Call HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 5000\\r\\n\\r\\n" + b"x" * 5000).split(b"\\r\\n")[0].decode())
        print("smuggle", exchange(b"POST /greeter/Echo.Call HTTP/1.1\\r\\nHost: a\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n").split(b"\\r\\n")[0].decode())
        """)
        let expected = (0..<10).map { "Hello, p\($0)!" } + [#"{"status":"SERVING"}"#]
        #expect(out.contains("pipelined [" + expected.map { "'\($0)'" }.joined(separator: ", ") + "]"), "\(out)")
        #expect(out.contains("malformed HTTP/1.1 400 Bad Request"), "\(out)")
        #expect(out.contains("oversized HTTP/1.1 413 Content Too Large"), "\(out)")
        #expect(out.contains("smuggle HTTP/1.1 400 Bad Request"), "\(out)")
        await f.stop()
    }

    @Test("curl: the one-line call")
    func curl() async throws {
        let f = try await Fixture()
        let r = try await runAsync("/usr/bin/curl", ["-sS", "-d", #"{"name": "Ada"}"#, "http://127.0.0.1:\(f.port)/greeter/Greeter.Hello"])
        #expect(r.output == #"{"text":"Hello, Ada!"}"#, "\(r.output)")
        await f.stop()
    }
}
