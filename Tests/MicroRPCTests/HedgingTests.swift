@testable import MicroRPC
import MicroCore
import MicroCoreTestSupport
import Synchronization
import Testing

/// Hedged requests: a second attempt to another node when the first has no answer after the delay; the first
/// answer wins, the other attempt is cancelled on the wire, and hedges spend the retry budget.
@Suite("Hedging")
struct HedgingTests {
    /// A server whose handler never answers until cancelled, counting calls and cancellations.
    static func silentServer(calls: Counter, cancelled: Counter) async throws -> RunningServer {
        try await RunningServer.start { server in
            server.handle("Echo.Call") { _, _ in
                calls.add()
                do {
                    try await Task.sleep(for: .seconds(300))
                } catch {
                    cancelled.add()
                    throw error
                }
                return Response(body: [])
            }
        }
    }

    static func echoServer(calls: Counter) async throws -> RunningServer {
        try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                calls.add()
                return Response(body: r.body)
            }
        }
    }

    @Test("a call whose first node does not answer is answered by the hedge, and the first attempt is cancelled at the server")
    func hedgeWinsLoserCancelled() async throws {
        let (silentCalls, silentCancelled, echoCalls) = (Counter(), Counter(), Counter())
        let silent = try await Self.silentServer(calls: silentCalls, cancelled: silentCancelled)
        // The hedge's node answers once the first attempt reached the silent node (whatever the machine's speed).
        let gate = Gate()
        let echo = try await Self.gatedServer(calls: echoCalls, gate: gate)
        let selector = OrderedSelector([silent.address, echo.address])
        let c = RunningClient.start(selector: selector)
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.milliseconds(5))))
        let client = c.client
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: options) }
        try await eventually(30, "the first attempt arrived") { silentCalls.count == 1 }
        gate.open()
        let response = try await call.value
        #expect(response.body == [7])
        #expect(echoCalls.count == 1)
        #expect(silentCalls.count == 1)
        // The loser's cancellation reaches its handler (waiting for the event, bounded generously).
        try await eventually(30, "the silent node's handler was cancelled") { silentCancelled.count == 1 }
        // Both nodes were marked: the winner a success, the cancelled loser superseded.
        try await eventually(30, "both attempts marked") { selector.marks.withLock { $0.count } == 2 }
        #expect(selector.successes == ["n1"])
        #expect(selector.failures.isEmpty)
        let lost = selector.marks.withLock { marks in marks.compactMap { m -> Duration? in
            if case .superseded(let after) = m.1, m.0 == "n0" { after } else { nil }
        } }
        #expect(lost.count == 1)
        // The time it ran (from when its task started, so it may be a little under the 5 ms delay).
        #expect(lost.allSatisfy { $0 > .zero }, "\(lost)")
        await c.stop()
        await silent.stop()
        await echo.stop()
    }

    /// A server that answers once `gate` opens: the request back, or `error` when given.
    static func gatedServer(calls: Counter, gate: Gate, error: RPCError? = nil) async throws -> RunningServer {
        try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                calls.add()
                await gate.wait()
                if let error { throw error }
                return Response(body: r.body)
            }
        }
    }

    @Test("the first attempt's answer, after a hedge went, wins: the hedge is cancelled at its server and marked superseded")
    func firstAnswerCancelsHedge() async throws {
        let (firstCalls, silentCalls, silentCancelled) = (Counter(), Counter(), Counter())
        let gate = Gate()
        let first = try await Self.gatedServer(calls: firstCalls, gate: gate)
        let silent = try await Self.silentServer(calls: silentCalls, cancelled: silentCancelled)
        let selector = OrderedSelector([first.address, silent.address])
        let c = RunningClient.start(selector: selector)
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.milliseconds(1))))
        let client = c.client
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [5]), options: options) }
        // The hedge reached the second node; then the first node answers.
        try await eventually(30, "the hedge arrived") { silentCalls.count == 1 }
        gate.open()
        let response = try await call.value
        #expect(response.body == [5])
        #expect(firstCalls.count == 1)
        try await eventually(30, "the hedge's handler was cancelled") { silentCancelled.count == 1 }
        try await eventually(30, "both attempts marked") { selector.marks.withLock { $0.count } == 2 }
        #expect(selector.successes == ["n0"])
        #expect(selector.marks.withLock { $0.contains { if case .superseded = $0.1, $0.0 == "n1" { true } else { false } } })
        await c.stop()
        await first.stop()
        await silent.stop()
    }

    @Test("when the first attempt fails while a hedge runs, the call waits for the hedge and takes its answer")
    func hedgeAnswersAfterFirstFailed() async throws {
        let (firstCalls, secondCalls) = (Counter(), Counter())
        let (firstGate, secondGate) = (Gate(), Gate())
        let first = try await Self.gatedServer(calls: firstCalls, gate: firstGate, error: RPCError(.invalidArgument, "no"))
        let second = try await Self.gatedServer(calls: secondCalls, gate: secondGate)
        let selector = OrderedSelector([first.address, second.address])
        let c = RunningClient.start(selector: selector)
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.milliseconds(1))))
        let client = c.client
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [6]), options: options) }
        try await eventually(30, "the hedge arrived") { secondCalls.count == 1 }
        // The first attempt fails (not retryable); the call must not end with its error while the hedge runs.
        firstGate.open()
        try await eventually(30, "the first attempt's failure was marked") { selector.marks.withLock { $0.count } == 1 }
        secondGate.open()
        let response = try await call.value
        #expect(response.body == [6])
        #expect(firstCalls.count == 1 && secondCalls.count == 1)
        await c.stop()
        await first.stop()
        await second.stop()
    }

    @Test("without budget no hedge goes: the call waits for its only attempt, which answers in the end")
    func budgetCapsHedges() async throws {
        let (slowCalls, echoCalls) = (Counter(), Counter())
        let gate = AsyncGate()
        let slow = try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                slowCalls.add()
                await gate.wait()
                return Response(body: r.body)
            }
        }
        let echo = try await Self.echoServer(calls: echoCalls)
        let c = RunningClient.start(selector: OrderedSelector([slow.address, echo.address])) {
            $0.retryBudget = RetryBudget.Configuration(ratio: 0, minPerSecond: 0)
        }
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.milliseconds(1))))
        let client = c.client
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: options) }
        try await eventually(30, "the first attempt reached its node") { slowCalls.count == 1 }
        // Many hedge delays pass while the first attempt waits (a hedge would have gone by now).
        try await Task.sleep(for: .milliseconds(50))
        gate.open()
        #expect(try await call.value.body == [7])
        #expect(echoCalls.count == 0, "no hedge without budget")
        #expect(slowCalls.count == 1)
        await c.stop()
        await slow.stop()
        await echo.stop()
    }

    @Test("hedges count as attempts: with maxHedges 3 and 1 retry, at most 2 attempts are sent")
    func hedgesAreAttempts() async throws {
        let (silentCalls, silentCancelled) = (Counter(), Counter())
        let nodes = try await [Self.silentServer(calls: silentCalls, cancelled: silentCancelled),
                               Self.silentServer(calls: silentCalls, cancelled: silentCancelled),
                               Self.silentServer(calls: silentCalls, cancelled: silentCancelled)]
        let selector = OrderedSelector(nodes.map(\.address))
        let c = RunningClient.start(selector: selector)
        var policy = HedgingPolicy(delay: .fixed(.milliseconds(1)))
        policy.maxHedges = 3
        let options = CallOptions(timeout: .seconds(30), retries: 1, idempotent: true, hedging: policy)
        let client = c.client
        let call = Task { try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: options) }
        try await eventually(30, "two attempts arrived") { silentCalls.count == 2 }
        // More hedge delays pass: no third attempt goes (it would have by now).
        try await Task.sleep(for: .milliseconds(50))
        call.cancel()
        await #expect(throws: RPCError.self) { _ = try await call.value }
        try await eventually(30, "both attempts were cancelled at their nodes") { silentCancelled.count == 2 }
        #expect(silentCalls.count == 2)
        // The caller gave up: no attempt lost to another, so both are ignored, not superseded.
        try await eventually(30, "both attempts marked") { selector.marks.withLock { $0.count } == 2 }
        #expect(selector.marks.withLock { $0.allSatisfy { $0.1 == .ignored } })
        await c.stop()
        for n in nodes { await n.stop() }
    }

    @Test("a percentile delay starts at the initial delay and follows the endpoint's observed latency")
    func percentileDelay() {
        let client = Client(transport: UnusedTransport())
        let policy = HedgingPolicy(delay: .percentile(0.95))
        let window = client.latencyWindow("svc", "Echo.Call")
        #expect(client.hedgeDelay(policy, window) == policy.initialDelay)
        let now = Timestamp.now.nanoseconds
        for i in 0..<100 { window.record(nanoseconds: i < 96 ? 2_000_000 : 80_000_000, now: now) }
        let delay = client.hedgeDelay(policy, window)
        #expect(delay >= .milliseconds(2) && delay < .milliseconds(3), "p95 is in the 2 ms bucket: \(delay)")
        #expect(client.hedgeDelay(HedgingPolicy(delay: .fixed(.milliseconds(9))), window) == .milliseconds(9))
    }
}

/// A transport for clients that never call.
struct UnusedTransport: ClientTransport {
    func unary(to address: String, head: RequestHead, message: [UInt8], deadline: Timestamp?) async throws(TransportError) -> UnaryResponse {
        throw TransportError(.connectFailed, "unused")
    }
    func openStream(to address: String, head: RequestHead, firstMessage: [UInt8]?, endOfInput: Bool, deadline: Timestamp?) async throws(TransportError) -> ClientStream {
        throw TransportError(.connectFailed, "unused")
    }
    func shutdown() async {}
}
