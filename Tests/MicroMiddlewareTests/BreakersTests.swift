import Logging
import Testing
@testable import MicroMiddleware

@Suite("CircuitBreakerMiddleware.Breakers")
struct BreakersTests {
    /// Node breakers over a 40 ms window (4 buckets) that open after 3 failures in a row.
    private func breakers() -> CircuitBreakerMiddleware.Breakers {
        var configuration = CircuitBreakerMiddleware.Configuration()
        configuration.node = CircuitBreakerConfiguration(window: .milliseconds(40), buckets: 4, minimumCalls: 1_000,
                                                         consecutiveFailures: 3, openDuration: .seconds(60))
        return CircuitBreakerMiddleware.Breakers(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test("a healthy node keeps no state; a failure makes one, which is forgotten once its failures left the window")
    func stateOnlyWhileFailing() async throws {
        let b = breakers()
        let key = CircuitBreakerMiddleware.Breakers.key("svc", "n1")
        b.record(key, scope: .node, success: true, probe: false)
        #expect(b.count == 0)
        #expect(b.admit(key, scope: .node) == .allow)
        b.record(key, scope: .node, success: false, probe: false)
        #expect(b.count == 1)
        b.record(key, scope: .node, success: true, probe: false)
        #expect(b.count == 1, "the failure is still in the window")
        // Successes until the failure has left the 40 ms window (bounded: returns as soon as it has).
        let clock = ContinuousClock()
        let limit = clock.now + .seconds(20)
        while b.count > 0 && clock.now < limit {
            try await Task.sleep(for: .milliseconds(5))
            b.record(key, scope: .node, success: true, probe: false)
        }
        #expect(b.count == 0)
        #expect(b.phase(key) == .closed)
        // Forgetting lost nothing that matters: three failures in a row still open it.
        for _ in 0..<3 { b.record(key, scope: .node, success: false, probe: false) }
        #expect(b.phase(key) == .open)
        guard case .reject = b.admit(key, scope: .node) else {
            Issue.record("an open breaker admitted an attempt")
            return
        }
        #expect(b.admit(CircuitBreakerMiddleware.Breakers.key("svc", "n2"), scope: .node) == .allow,
                "another node's breaker is its own")
    }

    @Test("an open breaker is not forgotten by successes of stragglers")
    func openStays() {
        let b = breakers()
        let key = CircuitBreakerMiddleware.Breakers.key("svc", "n1")
        for _ in 0..<3 { b.record(key, scope: .node, success: false, probe: false) }
        #expect(b.phase(key) == .open)
        b.record(key, scope: .node, success: true, probe: false)
        #expect(b.phase(key) == .open)
        #expect(b.count == 1)
    }

    @Test("a probe is known again by its start time: a straggler from before the opening is not one, a cancelled probe frees its slot")
    func probesByStartTime() async throws {
        var configuration = CircuitBreakerMiddleware.Configuration()
        configuration.node = CircuitBreakerConfiguration(minimumCalls: 1_000, consecutiveFailures: 3,
                                                         openDuration: .milliseconds(1), halfOpenProbes: 1)
        let b = CircuitBreakerMiddleware.Breakers(configuration: configuration, logger: Logger(label: "test"))
        let key = CircuitBreakerMiddleware.Breakers.key("svc", "n1")
        #expect(b.admit(key, scope: .node, startedAt: 1) == .allow, "the straggler, admitted while closed")
        for _ in 0..<3 { b.record(key, scope: .node, success: false, probe: false) }
        #expect(b.phase(key) == .open)
        // Once the open time passed, the next attempt is the probe (bounded wait: the open time is 1 ms).
        let clock = ContinuousClock()
        let limit = clock.now + .seconds(20)
        var decision = b.admit(key, scope: .node, startedAt: 2)
        while decision != .probe && clock.now < limit {
            try await Task.sleep(for: .milliseconds(2))
            decision = b.admit(key, scope: .node, startedAt: 2)
        }
        #expect(decision == .probe)
        guard case .reject = b.admit(key, scope: .node, startedAt: 3) else {
            Issue.record("a second attempt got in while the only probe is out")
            return
        }
        b.finish(key, scope: .node, startedAt: 1, success: true)
        #expect(b.phase(key) == .halfOpen, "the straggler's success is not the probe's")
        b.finish(key, scope: .node, startedAt: 2, success: nil)
        #expect(b.phase(key) == .halfOpen)
        #expect(b.admit(key, scope: .node, startedAt: 4) == .probe, "the cancelled probe gave its slot back")
        b.finish(key, scope: .node, startedAt: 4, success: true)
        #expect(b.phase(key) == .closed, "the probe's success closes it")
    }
}
