import MicroCore
import MicroCoreTestSupport
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Synchronization
import Testing

/// Handlers running at once, and the most seen.
final class ConcurrencyGauge: Sendable {
    private let state = Mutex<(current: Int, highest: Int)>((current: 0, highest: 0))
    init() {}
    func enter() { state.withLock { $0.current += 1; $0.highest = Swift.max($0.highest, $0.current) } }
    func leave() { state.withLock { $0.current -= 1 } }
    var highest: Int { state.withLock { $0.highest } }
}

@Suite("Adaptive concurrency middleware")
struct AdaptiveConcurrencyTests {
    @Test("when the handler slows down the learned limit falls and calls above it get NACKs; when it is fast again the limit rises")
    func limitFallsAndRises() async throws {
        let middleware = AdaptiveConcurrencyMiddleware(AdaptiveConcurrencyConfiguration(
            algorithm: .gradient, initialLimit: 20, minLimit: 2, maxLimit: 200, sampleWindow: 10,
            updateInterval: .seconds(60), tolerance: 1.5, smoothing: 1.0, longWindow: 600
        ))
        let limiter = middleware.limiter
        let slow = Flag(false)
        let gauge = ConcurrencyGauge()
        let s = try await RunningServer.start(configure: { $0.use { middleware } }) { server in
            server.handle("Work.Do") { r, _ in
                gauge.enter()
                defer { gauge.leave() }
                // The service time: short when fast, 100x longer when slow (a wide gap: on a loaded machine a 1 ms
                // sleep takes several).
                try await Task.sleep(for: .milliseconds(slow.isOn ? 100 : 1))
                return Response(body: r.body)
            }
        }
        let c = RunningClient.start()
        let client = c.client
        let options = CallOptions(retries: 0, address: s.address)
        let request = Request(service: "svc", endpoint: "Work.Do", body: [])

        // Warm-up, one call at a time: the long-term RTT learns the fast service time; an unused limit stays put.
        for _ in 0..<150 { _ = try await client.call(request, options: options) }
        #expect(limiter.limit == 20, "app-limited: the limit did not move")
        #expect(limiter.rejected == 0)

        slow.set(true)
        let stop = Flag(false)
        let nacks = Hits()
        let wrong = Recorder<String>()
        let (lowest, highestWhileSlow) = try await withThrowingTaskGroup(of: Void.self, returning: (Int, Int).self) { group in
            defer { stop.set(true) }
            for _ in 0..<30 {
                group.addTask {
                    while !stop.isOn && !Task.isCancelled {
                        do {
                            _ = try await client.call(request, options: options)
                        } catch let e as RPCError {
                            if e.code == .resourceExhausted && e.workNotStarted { nacks.add() } else { wrong.append("\(e)") }
                            try? await Task.sleep(for: .milliseconds(5))
                        } catch {
                            wrong.append("\(error)")
                        }
                    }
                }
            }
            // Slow service, more callers than the limit: the limit falls.
            try await eventually(60, "the limit falls below 9 (now \(limiter.limit))") { limiter.limit <= 8 }
            let low = limiter.limit
            let highest = gauge.highest
            #expect(nacks.count > 0, "calls above the limit were refused")

            // Fast again, load goes on: the limit grows back.
            slow.set(false)
            try await eventually(60, "the limit rises again from \(low)") { limiter.limit >= low + 4 }
            stop.set(true)
            try await group.waitForAll()
            return (low, highest)
        }
        #expect(wrong.all.isEmpty, "every refusal is a restartable NACK with resourceExhausted: \(wrong.all.prefix(3))")
        #expect(lowest < 20 && lowest >= 2, "the limit fell, not below minLimit: \(lowest)")
        #expect(highestWhileSlow <= 20, "never more handlers at once than the initial limit: \(highestWhileSlow)")
        #expect(limiter.rejected >= nacks.count, "every NACK was a refusal of the limiter")
        await c.stop()
        await s.stop()
    }

    @Test("health checks are neither limited nor counted")
    func healthNotCounted() async throws {
        let middleware = AdaptiveConcurrencyMiddleware(AdaptiveConcurrencyConfiguration(initialLimit: 1, minLimit: 1, maxLimit: 1))
        let gate = AsyncGate()
        let entered = Hits()
        let s = try await RunningServer.start(configure: { $0.use { middleware } }) { server in
            server.handle("Work.Do") { r, _ in
                entered.add()
                await gate.wait()
                return Response(body: r.body)
            }
        }
        let c = RunningClient.start()
        let client = c.client
        let options = CallOptions(retries: 0, address: s.address)
        // One call holds the only slot.
        let held = Task { try await client.call(Request(service: "svc", endpoint: "Work.Do", body: [1]), options: options) }
        try await eventually(10, "the first call entered its handler") { entered.count == 1 }
        #expect(middleware.limiter.inFlight == 1)
        // A second call is refused; a health check is not.
        let e = try #require(await outcome(client, Request(service: "svc", endpoint: "Work.Do", body: [2]), options).rpcError)
        #expect(e.code == .resourceExhausted && e.workNotStarted, "\(e)")
        let health = try await client.call(Request(service: "svc", endpoint: Server.healthEndpoint, body: []), options: options)
        #expect(text(health.body).contains("SERVING"))
        #expect(middleware.limiter.inFlight == 1)
        gate.open()
        #expect(try await held.value.body == [1])
        #expect(middleware.limiter.inFlight == 0)
        await c.stop()
        await s.stop()
    }
}
