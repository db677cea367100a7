import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Testing

@Suite("Circuit breaker middleware")
struct CircuitBreakerTests {
    /// A node whose handler answers UNAVAILABLE while `sick` is on, counting the requests that reach it.
    struct FlakyNode {
        let running: RunningServer
        let requests: Hits
        let sick: Flag
        var address: String { running.address }
    }

    static func node(sick: Bool) async throws -> FlakyNode {
        let requests = Hits()
        let flag = Flag(sick)
        let running = try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                requests.add()
                if flag.isOn { throw RPCError(.unavailable, "this node is sick") }
                return Response(body: r.body)
            }
        }
        return FlakyNode(running: running, requests: requests, sick: flag)
    }

    /// Node breakers that open after 3 failures in a row and close after one good probe.
    static func nodeBreaker(open: Duration) -> CircuitBreakerMiddleware {
        var configuration = CircuitBreakerMiddleware.Configuration()
        configuration.node = CircuitBreakerConfiguration(minimumCalls: 1_000, consecutiveFailures: 3, openDuration: open,
                                                         maxOpenDuration: open, halfOpenProbes: 1)
        configuration.service = nil
        return CircuitBreakerMiddleware(configuration)
    }

    static let request = Request(service: "svc", endpoint: "Echo.Call", body: [1])

    /// Fails `count` calls on the sick node n0 (one attempt each).
    static func trip(_ client: Client, count: Int = 3) async {
        for i in 0..<count {
            let result = await outcome(client, request, CallOptions(retries: 0))
            #expect(result.rpcError?.code == .unavailable, "failing call \(i)")
        }
    }

    @Test("after 3 failures the node's breaker opens; while open, calls skip it and land on the healthy node")
    func opensAndSkipsNode() async throws {
        let sick = try await Self.node(sick: true)
        let healthy = try await Self.node(sick: false)
        // Long open time: the breaker stays open for the whole test, however slow the machine.
        let breaker = Self.nodeBreaker(open: .seconds(60))
        let tripSelector = OrderedSelector([sick.address])
        let tripClient = RunningClient.start(selector: tripSelector) { $0.use { breaker } }
        #expect(breaker.phase(service: "svc", node: "n0") == .closed)
        await Self.trip(tripClient.client)
        #expect(breaker.phase(service: "svc", node: "n0") == .open)
        #expect(sick.requests.count == 3)

        // Same breaker (copies share their state), two nodes: every call starts at the sick n0.
        let selector = OrderedSelector([sick.address, healthy.address])
        let c = RunningClient.start(selector: selector) { $0.use { breaker } }
        for i in 0..<20 {
            // No retries: landing on n1 must not spend one.
            let r = try await c.client.call(Self.request, options: CallOptions(retries: 0))
            #expect(r.body == [1], "call \(i)")
        }
        #expect(sick.requests.count == 3, "the sick node got no request while its breaker was open")
        #expect(healthy.requests.count == 20)
        let held = selector.marks.withLock { marks in
            marks.filter { if case .held = $0.1 { true } else { false } }.map(\.0)
        }
        #expect(held.count == 20 && held.allSatisfy { $0 == "n0" }, "the client told the selector to hold n0: \(held)")
        #expect(selector.successes.count == 20 && selector.successes.allSatisfy { $0 == "n1" })
        await tripClient.stop()
        await c.stop()
        await sick.running.stop()
        await healthy.running.stop()
    }

    @Test("with the only node's breaker open, a call fails fast with UNAVAILABLE caused by CircuitOpenError, nothing sent")
    func failsFastWithOneNode() async throws {
        let sick = try await Self.node(sick: true)
        let breaker = Self.nodeBreaker(open: .seconds(60))
        let c = RunningClient.start(selector: OrderedSelector([sick.address])) { $0.use { breaker } }
        await Self.trip(c.client)
        #expect(breaker.phase(service: "svc", node: "n0") == .open)
        let before = sick.requests.count
        let result = await outcome(c.client, Self.request, CallOptions(retries: 3))
        let e = try #require(result.rpcError)
        #expect(e.code == .unavailable, "\(e)")
        #expect(e.workNotStarted)
        let open = try #require(e.cause as? CircuitOpenError, "cause: \(String(describing: e.cause))")
        #expect(open.service == "svc")
        #expect(open.node == "n0")
        #expect(open.retryAfter > .zero)
        #expect(sick.requests.count == before, "nothing was sent to the open node")
        await c.stop()
        await sick.running.stop()
    }

    @Test("after the open time, with the node healed, a probe goes through and the breaker closes")
    func probeCloses() async throws {
        let sick = try await Self.node(sick: true)
        let healthy = try await Self.node(sick: false)
        let breaker = Self.nodeBreaker(open: .milliseconds(200))
        let tripClient = RunningClient.start(selector: OrderedSelector([sick.address])) { $0.use { breaker } }
        await Self.trip(tripClient.client)
        #expect(breaker.phase(service: "svc", node: "n0") == .open)
        let trippedRequests = sick.requests.count
        sick.sick.set(false)

        // Keep calling (n0 first, n1 as the fallback): once the open time passed, the next call probes n0.
        let c = RunningClient.start(selector: OrderedSelector([sick.address, healthy.address])) { $0.use { breaker } }
        let client = c.client
        try await eventually(10, "the breaker of n0 closes") {
            let r = try? await client.call(Self.request, options: CallOptions(retries: 0))
            #expect(r?.body == [1], "every call succeeds, on n1 while n0 is open, on n0 once probed")
            return breaker.phase(service: "svc", node: "n0") == .closed
        }
        #expect(sick.requests.count > trippedRequests, "the probe reached the healed node")
        // Closed: calls go to n0 again.
        let before = sick.requests.count
        _ = try await client.call(Self.request, options: CallOptions(retries: 0))
        #expect(sick.requests.count == before + 1)
        await tripClient.stop()
        await c.stop()
        await sick.running.stop()
        await healthy.running.stop()
    }

    @Test("a probe that fails opens the breaker again")
    func failedProbeReopens() async throws {
        let sick = try await Self.node(sick: true)
        let breaker = Self.nodeBreaker(open: .milliseconds(200))
        let c = RunningClient.start(selector: OrderedSelector([sick.address])) { $0.use { breaker } }
        await Self.trip(c.client)
        #expect(breaker.phase(service: "svc", node: "n0") == .open)
        let tripped = sick.requests.count
        let client = c.client
        // Still sick: calls fail fast until the open time passes, then one probe reaches the node and fails.
        try await eventually(10, "a probe reaches the sick node") {
            _ = try? await client.call(Self.request, options: CallOptions(retries: 0))
            return sick.requests.count > tripped
        }
        #expect(sick.requests.count == tripped + 1, "one probe (halfOpenProbes 1)")
        #expect(breaker.phase(service: "svc", node: "n0") == .open, "the failed probe opened it again")
        await c.stop()
        await sick.running.stop()
    }

    @Test("application errors do not open a node's breaker")
    func applicationErrorsAreSuccesses() async throws {
        let requests = Hits()
        let s = try await RunningServer.start { server in
            server.handle("Echo.Call") { _, _ in
                requests.add()
                throw RPCError(.notFound, "no such thing")
            }
        }
        let breaker = Self.nodeBreaker(open: .seconds(60))
        let c = RunningClient.start(selector: OrderedSelector([s.address])) { $0.use { breaker } }
        for _ in 0..<6 {
            let result = await outcome(c.client, Self.request, CallOptions(retries: 0))
            #expect(result.rpcError?.code == .notFound)
        }
        #expect(breaker.phase(service: "svc", node: "n0") == .closed)
        #expect(requests.count == 6, "every call reached the node")
        await c.stop()
        await s.stop()
    }

    @Test("the service's breaker opens after failures of whole calls, then fails calls fast without sending them")
    func serviceBreaker() async throws {
        let sick = try await Self.node(sick: true)
        var configuration = CircuitBreakerMiddleware.Configuration()
        configuration.node = nil
        configuration.service = CircuitBreakerConfiguration(minimumCalls: 1_000, consecutiveFailures: 3, openDuration: .seconds(60),
                                                            maxOpenDuration: .seconds(60), halfOpenProbes: 1)
        let breaker = CircuitBreakerMiddleware(configuration)
        let c = RunningClient.start(selector: OrderedSelector([sick.address])) { $0.use { breaker } }
        await Self.trip(c.client)
        #expect(breaker.phase(service: "svc", node: nil) == .open)
        #expect(breaker.phase(service: "svc", node: "n0") == .closed, "no node breakers configured")
        let before = sick.requests.count
        let result = await outcome(c.client, Self.request, CallOptions(retries: 3))
        let e = try #require(result.rpcError)
        #expect(e.code == .unavailable, "\(e)")
        let open = try #require(e.cause as? CircuitOpenError)
        #expect(open.service == "svc")
        #expect(open.node == nil, "the service's breaker, not a node's")
        #expect(sick.requests.count == before, "nothing was sent")
        // Another service is not affected.
        #expect(breaker.phase(service: "other", node: nil) == .closed)
        await c.stop()
        await sick.running.stop()
    }
}
