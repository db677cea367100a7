import MicroCore
import MicroFraming
import MicroRPC
import Synchronization
import Testing

/// The server's one path: transport -> router -> route. Requests are matched by service, then endpoint; the
/// deadline is the server's to enforce; admission counts a call in and out where it runs.
@Suite("Routing and server deadlines")
struct RoutingTests {
    @Test("a REQUEST naming another service gets a restartable NACK (unary and stream), not this service's endpoint")
    func wrongService() async throws {
        let served = Counter()
        let s = try await RunningServer.start("svc") { server in
            server.handle("Echo.Call") { r, _ in
                served.add()
                return Response(body: r.body)
            }
            server.handleStream("Echo.Stream") { call in
                served.add()
                while let m = try await call.receive() { try await call.send(m) }
            }
        }
        let c = RunningClient.start()
        let o = CallOptions(retries: 0, address: s.address)
        do {
            _ = try await c.client.call(Request(service: "nosuch", endpoint: "Echo.Call", body: [1]), options: o)
            Issue.record("a call to another service must fail")
        } catch let e as RPCError {
            #expect(e.code == .unimplemented, "\(e)")
            #expect(e.workNotStarted, "a NACK: safe to retry on another node")
            #expect(e.message.contains("\"nosuch\" is not served here"), "\(e)")
        }
        do {
            let stream = try await c.client.stream(service: "nosuch", endpoint: "Echo.Stream", options: o)
            // The refusal may already have ended the stream: a send then fails; the status is in receive().
            try? await stream.send([1])
            _ = try await stream.receive()
            Issue.record("a stream to another service must fail")
        } catch let e as RPCError {
            #expect(e.workNotStarted, "\(e)")
            #expect(e.message.contains("not served here"), "\(e)")
        }
        #expect(served.count == 0, "no handler of svc ran for another service")
        // The right name still works, and a health check may name no service at all.
        let ok = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: o)
        #expect(ok.body == [7])
        let health = try await c.client.call(Request(service: "", endpoint: Server.healthEndpoint, body: []), options: o)
        #expect(text(health.body) == #"{"status":"SERVING"}"#)
        await c.stop()
        await s.stop()
    }

    @Test("a handler past its deadline is cancelled by the server, which answers DEADLINE_EXCEEDED and counts it out")
    func serverEnforcesDeadline() async throws {
        let cancelled = Counter()
        let started = Counter()
        let s = try await RunningServer.start { server in
            server.handle("Sleep.Call") { _, context in
                started.add()
                #expect(context.deadline != nil)
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    cancelled.add()
                    throw error
                }
                return Response(body: [])
            }
        }
        // The transport directly: a 50 ms budget in the REQUEST, no deadline on the client, no CANCEL sent.
        let c = RunningClient.start()
        let head = RequestHead(service: "svc", endpoint: "Sleep.Call", timeoutMicroseconds: 50_000)
        let transport = c.transport, address = s.address
        let r = try await withTimeout(10) { try await transport.unary(to: address, head: head, message: [], deadline: nil) }
        if case .error(let code, _) = r.status {
            #expect(StatusCode(rawValue: code) == .deadlineExceeded, "\(r.status)")
        } else {
            Issue.record("expected an ERROR status, got \(r.status)")
        }
        // On a busy machine the budget may run out before the handler starts: then it never runs.
        try await eventually(5, "handler cancelled") { cancelled.count == started.count }
        try await eventually(5, "counted out of the concurrency limit") { s.server.inFlightCalls == 0 }
        // Through the client: the same outcome, in about the budget.
        do {
            _ = try await c.client.call(Request(service: "svc", endpoint: "Sleep.Call", body: []),
                                        options: CallOptions(timeout: .milliseconds(50), address: s.address))
            Issue.record("expected deadlineExceeded")
        } catch let e as RPCError {
            #expect(e.code == .deadlineExceeded)
        }
        try await eventually(5, "second handler cancelled") { cancelled.count == started.count }
        try await eventually(20, "counted out") { s.server.inFlightCalls == 0 }
        await c.stop()
        await s.stop()
    }

    @Test("admission: over the limit a call gets a restartable NACK; each call is counted in and out exactly once")
    func admission() async throws {
        let gate = AsyncGate()
        let s = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 1 }) { server in
            server.handle("Wait.Call") { _, _ in
                await gate.wait()
                return Response(body: [1])
            }
            server.handle("Echo.Call") { r, _ in Response(body: r.body) }
        }
        let c = RunningClient.start()
        let o = CallOptions(retries: 0, address: s.address)
        let client = c.client
        let first = Task { try await client.call(Request(service: "svc", endpoint: "Wait.Call", body: []), options: o) }
        try await eventually(20, "first call running") { s.server.inFlightCalls == 1 }
        await expectError(c.client, o, Request(service: "svc", endpoint: "Echo.Call", body: [2]), .resourceExhausted, "limit of 1")
        #expect(s.server.refusedCalls == 1)
        // Health checks and refusals are not counted.
        _ = try await c.client.call(Request(service: "svc", endpoint: Server.healthEndpoint, body: []), options: o)
        #expect(s.server.inFlightCalls == 1)
        gate.open()
        #expect(try await first.value.body == [1])
        try await eventually(20, "counted out") { s.server.inFlightCalls == 0 }
        #expect(try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [3]), options: o).body == [3])
        await c.stop()
        await s.stop()
    }

    @Test("a handler's deadline survives the calls it makes: each hop has its own scope, also in-memory")
    func scopePerHop() async throws {
        let b = try await RunningServer.start("b") { server in
            server.handle("B.Work") { _, context in
                Response(body: Array("\(context.deadline != nil)".utf8))
            }
        }
        let c = RunningClient.start()
        let client = c.client, bAddress = b.address
        let a = try await RunningServer.start("a") { server in
            server.handle("A.Work") { _, context in
                let before = RPCContext.inheritedDeadline
                _ = try await client.call(Request(service: "b", endpoint: "B.Work", body: []),
                                          options: CallOptions(timeout: .seconds(10), address: bAddress))
                let after = RPCContext.inheritedDeadline
                return Response(body: Array("\(before == context.deadline && after == context.deadline && before != nil)".utf8))
            }
        }
        let r = try await c.client.call(Request(service: "a", endpoint: "A.Work", body: []),
                                        options: CallOptions(timeout: .seconds(30), address: a.address))
        #expect(text(r.body) == "true", "A's deadline unchanged by its call to B")
        await c.stop()
        await a.stop()
        await b.stop()
    }
}
