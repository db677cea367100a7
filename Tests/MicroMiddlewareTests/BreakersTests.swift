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
}
