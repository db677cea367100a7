import MicroCore
import MicroCoreTestSupport
import MicroRPC
import MicroTestSupport
import Synchronization
import Testing

/// Hedging over loopback, with the caller on the client transport's loop: the first attempt runs on the caller's
/// task and is cancelled through the transport's `CallCancellation` path, and the delay is an alarm on that loop.
@Suite("Hedging over loopback")
struct LoopbackHedgingTests {
    /// Answers the request back, or never (`silent`) until cancelled.
    static func server(calls: Counter, cancelled: Counter, silent: Bool) async throws -> RunningServer {
        try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                calls.add()
                guard silent else { return Response(body: r.body) }
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

    @Test("a silent first node: the hedge answers, and the first attempt is cancelled at its server and marked superseded",
          arguments: [true, false])
    func hedgeWins(onLoop: Bool) async throws {
        let (silentCalls, silentCancelled, echoCalls) = (Counter(), Counter(), Counter())
        // The hedge's node answers only once the first attempt reached the silent node, so that the first attempt
        // is surely under way at its server when the hedge wins (whatever the machine's speed).
        let gates = Mutex<[Gate]>([])
        let silent = try await Self.server(calls: silentCalls, cancelled: silentCancelled, silent: true)
        let echo = try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in
                echoCalls.add()
                await gates.withLock { $0[echoCalls.count - 1] }.wait()
                return Response(body: r.body)
            }
        }
        let selector = OrderedSelector([silent.address, echo.address])
        let c = RunningClient.start(selector: selector)
        let client = c.client
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.milliseconds(2))))
        let executor = onLoop ? c.transport.preferredExecutor(for: silent.address) : nil
        for round in 1...3 {
            let gate = Gate()
            gates.withLock { $0.append(gate) }
            let call = Task(executorPreference: executor) {
                try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [UInt8(round)]), options: options)
            }
            try await eventually(30, "the first attempt reached the silent node") { silentCalls.count == round }
            gate.open()
            let response = try await call.value
            #expect(response.body == [UInt8(round)])
            try await eventually(30, "the silent node's handler was cancelled") { silentCancelled.count == round }
        }
        #expect(silentCalls.count == 3 && echoCalls.count == 3)
        try await eventually(30, "every attempt marked") { selector.marks.withLock { $0.count } == 6 }
        #expect(selector.successes == ["n1", "n1", "n1"])
        #expect(selector.marks.withLock { $0.filter { if case .superseded = $0.1, $0.0 == "n0" { true } else { false } }.count } == 3)
        await c.stop()
        await silent.stop()
        await echo.stop()
    }

    @Test("an answer before the delay: no hedge goes, and the alarm is cancelled", arguments: [true, false])
    func noHedgeWhenFast(onLoop: Bool) async throws {
        let (echoCalls, otherCalls, unused) = (Counter(), Counter(), Counter())
        let echo = try await Self.server(calls: echoCalls, cancelled: unused, silent: false)
        let other = try await Self.server(calls: otherCalls, cancelled: unused, silent: false)
        let selector = OrderedSelector([echo.address, other.address])
        let c = RunningClient.start(selector: selector)
        let client = c.client
        let options = CallOptions(timeout: .seconds(30), idempotent: true, hedging: HedgingPolicy(delay: .fixed(.seconds(20))))
        let executor = onLoop ? c.transport.preferredExecutor(for: echo.address) : nil
        for round in 1...20 {
            let response = try await Task(executorPreference: executor) {
                try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [UInt8(round)]), options: options)
            }.value
            #expect(response.body == [UInt8(round)])
        }
        #expect(echoCalls.count == 20 && otherCalls.count == 0)
        await c.stop()
        await echo.stop()
        await other.stop()
    }
}
