import Foundation
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroRPC
import MicroRegistry
import MicroSelector
import MicroUVTransport
import Synchronization
import Testing

@Suite("Deadlines, cancellation, retries, overload", .serialized)
struct ResilienceTests {
    @Test("a deadline propagates across three hops: each hop sees less budget, and an expired request never runs")
    func deadlineAcrossHops() async throws {
        let budgets = Recorder<(String, Duration)>()
        let cRuns = Counter()
        let c = try await RunningServer.start("c") { server in
            server.handle("C.Work") { req, ctx in
                cRuns.add()
                budgets.append(("c", ctx.remaining ?? .zero))
                return Response(body: req.body)
            }
        }
        let client = RunningClient.start()
        let cAddress = c.address
        let downstream = client.client
        let b = try await RunningServer.start("b") { server in
            server.handle("B.Work") { req, ctx in
                budgets.append(("b", ctx.remaining ?? .zero))
                let wait = Int(text(req.body)) ?? 0
                // Work that does not notice cancellation (a busy loop), so that the call to C starts late.
                let until = ContinuousClock.now + .milliseconds(wait)
                while ContinuousClock.now < until { usleep(1000) }
                // No timeout of its own: the call to C inherits what is left of B's budget.
                let r = try await downstream.call(Request(service: "c", endpoint: "C.Work", body: req.body), options: CallOptions(address: cAddress))
                return r
            }
        }
        let bAddress = b.address
        // Hop 1 -> 2 -> 3 with 2 s: C sees less than B, which sees less than 2 s.
        _ = try await client.client.call(Request(service: "b", endpoint: "B.Work", body: bytes("50")), options: CallOptions(timeout: .seconds(2), address: bAddress))
        let seen = budgets.all
        let bBudget = try #require(seen.first { $0.0 == "b" }?.1)
        let cBudget = try #require(seen.first { $0.0 == "c" }?.1)
        #expect(bBudget < .seconds(2) && bBudget > .milliseconds(1500))
        #expect(cBudget < bBudget - .milliseconds(40), "C must see B's remaining budget, minus B's 50 ms of work")
        #expect(cRuns.count == 1)
        // B works past the whole budget: its call to C is never sent, and C never runs.
        do {
            _ = try await client.client.call(Request(service: "b", endpoint: "B.Work", body: bytes("400")), options: CallOptions(timeout: .milliseconds(200), address: bAddress))
            Issue.record("expected deadlineExceeded")
        } catch let e as RPCError {
            #expect(e.code == .deadlineExceeded)
        }
        try await Task.sleep(for: .milliseconds(400))
        #expect(cRuns.count == 1, "C must not run a request whose budget ran out")
        await client.stop()
        await b.stop()
        await c.stop()
    }

    @Test("a request that arrives with its budget spent is refused at once, without running the handler")
    func expiredOnArrival() async throws {
        let runs = Counter()
        let s = try await RunningServer.start { $0.handle("Echo.Call") { req, _ in runs.add(); return Response(body: req.body) } }
        let group = EventLoopGroup(threads: 1)
        let transport = UVClientTransport(group: group)
        // 1 µs of budget: gone by the time the handler would start.
        let head = RequestHead(service: "svc", endpoint: "Echo.Call", timeoutMicroseconds: 1)
        let r = try await transport.unary(to: s.address, head: head, message: [1])
        guard case .error(let code, let message) = r.status else { Issue.record("expected an error, got \(r.status)"); return }
        #expect(code == RPCError.Code.deadlineExceeded.rawValue)
        #expect(message.contains("deadline already passed"))
        #expect(runs.count == 0)
        await transport.shutdown()
        #expect(group.shutdownGracefully())
        await s.stop()
    }

    @Test("cancelling the caller's task cancels the handler on the server")
    func cancellationReachesHandler() async throws {
        let started = Counter(), cancelled = Counter()
        let s = try await RunningServer.start { server in
            server.handle("Slow.Call") { _, _ in
                started.add()
                do {
                    try await Task.sleep(for: .seconds(20))
                } catch {
                    cancelled.add()
                    throw error
                }
                return Response(body: [])
            }
        }
        let c = RunningClient.start()
        let client = c.client, address = s.address
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Slow.Call", body: []), options: CallOptions(address: address)) }
        try await eventually(5, "handler started") { started.count == 1 }
        call.cancel()
        do {
            _ = try await withTimeout(5) { try await call.value }
            Issue.record("expected cancellation")
        } catch let e as RPCError {
            #expect(e.code == .cancelled)
        }
        try await eventually(5, "handler cancelled") { cancelled.count == 1 }
        // Counted out when the handler's route returns, just after the handler saw the cancellation.
        try await eventually(5, "counted out") { s.server.inFlightCalls == 0 }
        await c.stop()
        await s.stop()
    }

    @Test("a call that a node refuses (NACK) or cannot take (connect failure) is retried on another node")
    func retryOnAnotherNode() async throws {
        let attempts = Recorder<UInt16>()
        let full = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 0 }) { $0.handle("Echo.Call") { req, _ in Response(body: req.body) } }
        let good = try await RunningServer.start { server in
            server.handle("Echo.Call") { req, ctx in
                attempts.append(ctx.attempt)
                return Response(body: req.body)
            }
        }
        // A port nobody listens on: bound once, then closed.
        let dead = try await RunningServer.start { _ in }
        let deadAddress = dead.address
        await dead.stop()

        let selector = OrderedSelector([full.address, deadAddress, good.address])
        let c = RunningClient.start(selector: selector)
        let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [5]), options: CallOptions(retries: 3))
        #expect(r.body == [5])
        #expect(attempts.all == [3], "the third attempt, on the third node, is the one that ran")
        #expect(selector.failures == ["n0", "n1"])
        #expect(selector.successes == ["n2"])
        #expect(full.server.refusedCalls == 1)
        // With no retries left, the NACK is the outcome: a retry-safe error the caller may take elsewhere.
        do {
            _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [5]), options: CallOptions(retries: 0))
            Issue.record("expected the NACK")
        } catch let e as RPCError {
            #expect(e.workNotStarted)
            #expect(e.code == .resourceExhausted)
        }
        await c.stop()
        await full.stop()
        await good.stop()
    }

    @Test("a call that may have run (the connection broke mid-call) is retried only when idempotent")
    func idempotency() async throws {
        let goodRuns = Counter()
        let good = try await RunningServer.start { server in
            server.handle("Work.Call") { req, _ in goodRuns.add(); return Response(body: req.body) }
        }
        for idempotent in [false, true] {
            let started = Counter()
            let breaking = try await RunningServer.start { server in
                server.handle("Work.Call") { _, _ in
                    started.add()
                    try await Task.sleep(for: .seconds(20))
                    return Response(body: [])
                }
            }
            let selector = OrderedSelector([breaking.address, good.address])
            let c = RunningClient.start(selector: selector)
            let client = c.client
            let call = Task {
                try await client.call(Request(service: "svc", endpoint: "Work.Call", body: [1]), options: CallOptions(retries: 3, idempotent: idempotent))
            }
            try await eventually(5, "handler started") { started.count == 1 }
            // The node goes away with the call running: the outcome is unknown to the caller.
            await breaking.server.shutdown(gracePeriod: .milliseconds(10))
            let result = try await withTimeout(10) { await call.result }
            if idempotent {
                #expect((try? result.get())?.body == [1])
                #expect(goodRuns.count == 1)
            } else {
                guard case .failure(let e as RPCError) = result else { Issue.record("expected an RPCError, got \(result)"); return }
                #expect(e.code == .unavailable || e.code == .cancelled)
                #expect(!e.workNotStarted)
                #expect(goodRuns.count == 0, "a call that may have run must not run again elsewhere")
            }
            await c.stop()
            #expect(breaking.group.shutdownGracefully())
        }
        await good.stop()
    }

    @Test("the retry budget caps retries when every node fails")
    func retryBudget() async throws {
        let a = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 0 }) { $0.handle("Echo.Call") { r, _ in Response(body: r.body) } }
        let b = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 0 }) { $0.handle("Echo.Call") { r, _ in Response(body: r.body) } }
        let selector = OrderedSelector([a.address, b.address, a.address, b.address])
        let c = RunningClient.start(selector: selector) { config in
            config.retryBudget = RetryBudget.Configuration(ratio: 0.2, minPerSecond: 0, window: .seconds(10))
            config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1), jitter: 0)
        }
        let calls = 200
        var failed = 0
        for _ in 0..<calls {
            do {
                _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: []), options: CallOptions(retries: 3))
            } catch is RPCError {
                failed += 1
            }
        }
        let attempts = a.server.refusedCalls + b.server.refusedCalls
        #expect(failed == calls)
        // Without a budget: 4 attempts per call (800). With 20%: at most 200 + 40.
        #expect(attempts <= calls + calls / 5 + 1, "attempts: \(attempts)")
        #expect(attempts >= calls)
        await c.stop()
        await a.stop()
        await b.stop()
    }

    @Test("above its concurrency limit a server answers NACK at once instead of queueing")
    func overloadNack() async throws {
        let s = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 2 }) { server in
            server.handle("Slow.Call") { _, _ in
                try await Task.sleep(for: .milliseconds(500))
                return Response(body: [1])
            }
        }
        let c = RunningClient.start()
        let client = c.client, address = s.address
        let results = await withTaskGroup(of: Result<Response, any Error>.self) { group in
            for i in 0..<3 {
                group.addTask {
                    if i == 2 { try? await Task.sleep(for: .milliseconds(100)) }
                    do {
                        return .success(try await client.call(Request(service: "svc", endpoint: "Slow.Call", body: []), options: CallOptions(retries: 0, address: address)))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var out: [Result<Response, any Error>] = []
            for await r in group { out.append(r) }
            return out
        }
        let ok = results.filter { if case .success = $0 { true } else { false } }.count
        let nacks = results.compactMap { r -> RPCError? in if case .failure(let e as RPCError) = r { e } else { nil } }
        #expect(ok == 2)
        #expect(nacks.count == 1)
        #expect(nacks.first?.workNotStarted == true)
        #expect(s.server.refusedCalls == 1)
        await c.stop()
        await s.stop()
    }
}

@Suite("Admission accounting", .serialized)
struct AdmissionTests {
    @Test("calls cancelled at any point, and calls lost with their connection, are all counted out: the limit admits new calls afterwards")
    func noDrift() async throws {
        let s = try await RunningServer.start(configure: { $0.maxConcurrentCalls = 64 }) { server in
            server.handle("Maybe.Slow") { req, _ in
                if req.body.first == 1 { try await Task.sleep(for: .seconds(5)) }
                return Response(body: req.body)
            }
        }
        for round in 0..<3 {
            let c = RunningClient.start()
            let client = c.client, address = s.address
            let calls = (0..<60).map { i in
                Task { try await client.call(Request(service: "svc", endpoint: "Maybe.Slow", body: [UInt8(i % 2)]), options: CallOptions(retries: 0, address: address)) }
            }
            try await Task.sleep(for: .milliseconds(20 + round * 10))
            for (i, call) in calls.enumerated() where i % 3 == 0 { call.cancel() }
            if round == 2 {
                await c.stop()  // the connection goes away with calls in flight
            }
            for call in calls { _ = await call.result }
            if round < 2 { await c.stop() }
        }
        try await eventually(10, "every call counted out") { s.server.inFlightCalls == 0 }
        // All 64 slots are free again.
        let c = RunningClient.start()
        let client = c.client, address = s.address
        let ok = try await withThrowingTaskGroup(of: Bool.self) { g in
            for _ in 0..<64 {
                g.addTask { try await client.call(Request(service: "svc", endpoint: "Maybe.Slow", body: [0]), options: CallOptions(retries: 0, address: address)).body == [0] }
            }
            var all = true
            for try await r in g { all = all && r }
            return all
        }
        #expect(ok)
        #expect(s.server.refusedCalls == 0)
        await c.stop()
        await s.stop()
    }
}
