import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Testing

@Suite("Rate limit middleware")
struct RateLimitTests {
    static func countingServer(configure: (inout ServerConfiguration) -> Void, handled: Hits) async throws -> RunningServer {
        try await RunningServer.start(configure: configure) { server in
            server.handle("Echo.Call") { r, context in
                handled.add()
                return Response(body: bytes(context.identity?.name ?? "-"))
            }
        }
    }

    @Test("the server admits at most rate x elapsed + burst calls of an endpoint and NACKs the rest (resourceExhausted)")
    func serverEndpointRate() async throws {
        let rate = 40.0  // low enough that four callers exceed it on a loaded machine too
        let burst = 8
        let handled = Hits()
        let s = try await Self.countingServer(configure: { config in
            config.use { ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: rate, burst: burst))) }
        }, handled: handled)
        let c = RunningClient.start()
        let client = c.client
        let address = s.address
        let admitted = Hits()
        let refused = Hits()
        let wrongRefusals = Recorder<String>()
        let clock = ContinuousClock()
        let start = clock.now
        let limit = start + .seconds(30)

        // Four callers as fast as they can, until a second has passed and calls were refused (bounded at 30 s: on a
        // loaded machine the callers may start late); the expected count is computed from the measured time.
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while clock.now < limit && (start.duration(to: clock.now) < .milliseconds(1500) || refused.count < 10) {
                        do {
                            _ = try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]),
                                                      options: CallOptions(retries: 0, address: address))
                            admitted.add()
                        } catch let e as RPCError {
                            refused.add()
                            if e.code != .resourceExhausted || !e.workNotStarted { wrongRefusals.append("\(e) workNotStarted=\(e.workNotStarted)") }
                        } catch {
                            wrongRefusals.append("\(error)")
                        }
                    }
                }
            }
        }
        let elapsed = start.duration(to: clock.now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let ceiling = rate * seconds + Double(burst)
        #expect(wrongRefusals.all.isEmpty, "every refusal is a restartable NACK with resourceExhausted: \(wrongRefusals.all.prefix(3))")
        #expect(refused.count > 0, "the callers went faster than the rate")
        #expect(admitted.count == handled.count, "an admitted call ran its handler, a refused one did not")
        // GCRA admits at most rate x T + burst (+1 for rounding) in any stretch of length T.
        #expect(Double(admitted.count) <= ceiling + 1, "admitted \(admitted.count) in \(elapsed), at most \(ceiling)")
        // No lower bound here: on a loaded machine the callers may all stall (other tests can hold the whole
        // cooperative pool), and tokens of a stall beyond the burst are gone by design. That the limiter admits
        // exactly rate x T + burst of saturating callers is shown on simulated time in `RateLimiterTests`.
        await c.stop()
        await s.stop()
    }

    @Test("callers (identities from bearer tokens) have separate buckets")
    func perCallerBuckets() async throws {
        let handled = Hits()
        let s = try await Self.countingServer(configure: { config in
            config.use {
                AuthMiddleware(.init(tokens: StaticTokenVerifier(["alice-token": "alice", "bob-token": "bob"]),
                                     policy: AuthPolicy(defaultRule: .authenticated)))
                // One call per 100 s: no token comes back during the test.
                ServerRateLimitMiddleware(.init(caller: Rate(perSecond: 0.01, burst: 3)))
            }
        }, handled: handled)
        let alice = RunningClient.start { $0.use { BearerTokenMiddleware("alice-token") } }
        let bob = RunningClient.start { $0.use { BearerTokenMiddleware("bob-token") } }
        let options = CallOptions(retries: 0, address: s.address)
        let request = Request(service: "svc", endpoint: "Echo.Call", body: [])
        for _ in 0..<3 {
            let r = try await alice.client.call(request, options: options)
            #expect(text(r.body) == "alice")
        }
        let refused = await outcome(alice.client, request, options)
        let e = try #require(refused.rpcError, "alice's fourth call is over her burst")
        #expect(e.code == .resourceExhausted, "\(e)")
        #expect(e.workNotStarted, "a restartable NACK")
        #expect(e.message.contains("alice"), "\(e.message)")
        // Bob's bucket is full although alice's is empty.
        for _ in 0..<3 {
            let r = try await bob.client.call(request, options: options)
            #expect(text(r.body) == "bob")
        }
        #expect(await outcome(bob.client, request, options).rpcError?.code == .resourceExhausted)
        #expect(handled.count == 6)
        await alice.stop()
        await bob.stop()
        await s.stop()
    }

    @Test("health checks are never rate limited, neither per endpoint nor per caller")
    func healthNotLimited() async throws {
        let handled = Hits()
        let s = try await Self.countingServer(configure: { config in
            config.use { ServerRateLimitMiddleware(.init(endpoint: Rate(perSecond: 0.01, burst: 1), caller: Rate(perSecond: 0.01, burst: 1))) }
        }, handled: handled)
        let c = RunningClient.start()
        let options = CallOptions(retries: 0, address: s.address)
        for _ in 0..<5 {
            let r = try await c.client.call(Request(service: "svc", endpoint: Server.healthEndpoint, body: []), options: options)
            #expect(text(r.body).contains("SERVING"))
        }
        _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: []), options: options)
        #expect(await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: []), options).rpcError?.code == .resourceExhausted)
        await c.stop()
        await s.stop()
    }

    @Test("each endpoint has its own bucket: the rate configured for it, else the default; endpoints alternating")
    func perEndpointBuckets() async throws {
        let s = try await RunningServer.start(configure: { config in
            var limits = ServerRateLimitMiddleware.Configuration(endpoint: Rate(perSecond: 0.01, burst: 2))
            limits.endpoints["Echo.Own"] = Rate(perSecond: 0.01, burst: 4)
            config.use { ServerRateLimitMiddleware(limits) }
        }) { server in
            for endpoint in ["Echo.A", "Echo.B", "Echo.Own"] { server.handle(endpoint) { _, _ in Response(body: []) } }
        }
        let c = RunningClient.start()
        let options = CallOptions(retries: 0, address: s.address)
        var admitted: [String: Int] = [:]
        // Alternating endpoints, so that the endpoint of one call is rarely the one the previous call named.
        for _ in 0..<6 {
            for endpoint in ["Echo.A", "Echo.Own", "Echo.B"] {
                let failure = await outcome(c.client, Request(service: "svc", endpoint: endpoint, body: []), options).rpcError
                if failure == nil { admitted[endpoint, default: 0] += 1 } else { #expect(failure?.code == .resourceExhausted) }
            }
        }
        // One token per 100 s: none comes back during the test.
        #expect(admitted == ["Echo.A": 2, "Echo.B": 2, "Echo.Own": 4])
        await c.stop()
        await s.stop()
    }

    @Test("the client limiter fails calls beyond its burst locally with resourceExhausted, nothing sent, not retried")
    func clientLimiter() async throws {
        let handled = Hits()
        let s = try await Self.countingServer(configure: { _ in }, handled: handled)
        let selector = OrderedSelector([s.address])
        let c = RunningClient.start(selector: selector) { config in
            config.use { ClientRateLimitMiddleware(rate: Rate(perSecond: 0.01, burst: 3)) }
        }
        let request = Request(service: "svc", endpoint: "Echo.Call", body: [])
        for _ in 0..<3 {
            _ = try await c.client.call(request, options: CallOptions(retries: 3))
        }
        #expect(handled.count == 3)
        for _ in 0..<3 {
            let e = try #require(await outcome(c.client, request, CallOptions(retries: 3)).rpcError)
            #expect(e.code == .resourceExhausted, "\(e)")
            #expect(e.message.contains("not sent"), "\(e.message)")
        }
        #expect(handled.count == 3, "the refused calls never reached the server")
        #expect(selector.marks.withLock { $0.count } == 3, "no attempt was made for a refused call")
        await c.stop()
        await s.stop()
    }

    @Test("the client limiter keeps a bucket per service; a service with its own rate uses it")
    func clientLimiterPerService() async throws {
        let handledA = Hits()
        let handledB = Hits()
        let a = try await RunningServer.start("alpha") { server in
            server.handle("Echo.Call") { _, _ in handledA.add(); return Response(body: []) }
        }
        let b = try await RunningServer.start("beta") { server in
            server.handle("Echo.Call") { _, _ in handledB.add(); return Response(body: []) }
        }
        var configuration = ClientRateLimitMiddleware.Configuration(rate: Rate(perSecond: 0.01, burst: 2))
        configuration.services = ["beta": Rate(perSecond: 0.01, burst: 4)]
        let c = RunningClient.start { $0.use { ClientRateLimitMiddleware(configuration) } }
        var okA = 0
        var okB = 0
        for _ in 0..<6 {
            if await outcome(c.client, Request(service: "alpha", endpoint: "Echo.Call", body: []), CallOptions(address: a.address)).response != nil { okA += 1 }
            if await outcome(c.client, Request(service: "beta", endpoint: "Echo.Call", body: []), CallOptions(address: b.address)).response != nil { okB += 1 }
        }
        #expect(okA == 2)
        #expect(okB == 4)
        #expect(handledA.count == 2)
        #expect(handledB.count == 4)
        await c.stop()
        await a.stop()
        await b.stop()
    }
}
