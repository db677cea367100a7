import Testing
@testable import MicroMiddleware

@Suite("BreakerState")
struct BreakerStateTests {
    private static let second: Int64 = 1_000_000_000

    /// Ratio only (consecutive failures off), 10 buckets of 1 s.
    private func ratioBreaker(minimumCalls: Int = 10) -> BreakerState {
        BreakerState(configuration: CircuitBreakerConfiguration(
            window: .seconds(10), buckets: 10, minimumCalls: minimumCalls, failureRatio: 0.5,
            consecutiveFailures: 0, openDuration: .seconds(5), maxOpenDuration: .seconds(60), halfOpenProbes: 3
        ))
    }

    /// Opens after 3 failures in a row (ratio effectively off), 3 probes.
    private func consecutiveBreaker(openDuration: Duration = .seconds(5), max: Duration = .seconds(60)) -> BreakerState {
        BreakerState(configuration: CircuitBreakerConfiguration(
            minimumCalls: 1_000, consecutiveFailures: 3, openDuration: openDuration, maxOpenDuration: max,
            halfOpenProbes: 3
        ))
    }

    /// Drives a breaker from closed to open with failures at `now`.
    private func trip(_ breaker: inout BreakerState, now: Int64) {
        var transition: BreakerState.Transition?
        while breaker.phase == .closed {
            #expect(breaker.admit(now: now) == .allow)
            transition = breaker.record(success: false, probe: false, now: now)
        }
        #expect(transition == BreakerState.Transition(from: .closed, to: .open))
    }

    @Test("The failure ratio opens the breaker only once the window holds minimumCalls calls")
    func ratioNeedsMinimumCalls() {
        var breaker = ratioBreaker(minimumCalls: 10)
        // 9 failures: a ratio of 1.0, but below minimumCalls.
        for _ in 0..<9 {
            #expect(breaker.admit(now: 0) == .allow)
            #expect(breaker.record(success: false, probe: false, now: 0) == nil)
        }
        #expect(breaker.phase == .closed)
        #expect(breaker.callsInWindow(now: 0) == 9)
        #expect(breaker.failuresInWindow(now: 0) == 9)
        // The 10th call reaches minimumCalls; even a success leaves the ratio at 0.9.
        let transition = breaker.record(success: true, probe: false, now: 0)
        #expect(transition == BreakerState.Transition(from: .closed, to: .open))
        #expect(breaker.phase == .open)
    }

    @Test("A failure ratio below the threshold keeps the breaker closed")
    func lowRatioStaysClosed() {
        var breaker = ratioBreaker(minimumCalls: 10)
        // 4 failures in 10 calls, alternating so no long run: 0.4 < 0.5.
        for i in 0..<10 {
            _ = breaker.admit(now: 0)
            #expect(breaker.record(success: i % 2 == 0 || i >= 8, probe: false, now: 0) == nil)
        }
        #expect(breaker.failuresInWindow(now: 0) == 4)
        #expect(breaker.phase == .closed)
    }

    @Test("Consecutive failures open the breaker and a success resets the run")
    func consecutiveFailuresOpen() {
        var breaker = consecutiveBreaker()
        #expect(breaker.record(success: false, probe: false, now: 0) == nil)
        #expect(breaker.record(success: false, probe: false, now: 0) == nil)
        #expect(breaker.consecutiveFailures == 2)
        #expect(breaker.record(success: true, probe: false, now: 0) == nil)
        #expect(breaker.consecutiveFailures == 0)
        #expect(breaker.record(success: false, probe: false, now: 0) == nil)
        #expect(breaker.record(success: false, probe: false, now: 0) == nil)
        #expect(breaker.phase == .closed)
        let transition = breaker.record(success: false, probe: false, now: 0)
        #expect(transition == BreakerState.Transition(from: .closed, to: .open))
        #expect(breaker.phase == .open)
    }

    @Test("While open, calls are rejected with the time left until half-open")
    func rejectsWhileOpen() {
        var breaker = consecutiveBreaker(openDuration: .seconds(5))
        trip(&breaker, now: 10 * Self.second)
        #expect(breaker.admit(now: 10 * Self.second) == .reject(retryAfterNanoseconds: 5 * Self.second))
        #expect(breaker.admit(now: 13 * Self.second) == .reject(retryAfterNanoseconds: 2 * Self.second))
        #expect(breaker.admit(now: 15 * Self.second - 1) == .reject(retryAfterNanoseconds: 1))
        #expect(breaker.phase == .open)
        #expect(breaker.admit(now: 15 * Self.second) == .probe)
        #expect(breaker.phase == .halfOpen)
    }

    @Test("Half-open hands out at most halfOpenProbes probes at once")
    func halfOpenLimitsProbes() {
        var breaker = consecutiveBreaker()
        trip(&breaker, now: 0)
        let t = 5 * Self.second
        #expect(breaker.admit(now: t) == .probe)
        #expect(breaker.admit(now: t) == .probe)
        #expect(breaker.admit(now: t) == .probe)
        #expect(breaker.probesInFlight == 3)
        #expect(breaker.admit(now: t) == .reject(retryAfterNanoseconds: 0))
        #expect(breaker.admit(now: t + Self.second) == .reject(retryAfterNanoseconds: 0))
        // One success frees its slot without closing yet.
        #expect(breaker.record(success: true, probe: true, now: t) == nil)
        #expect(breaker.phase == .halfOpen)
        #expect(breaker.admit(now: t) == .probe)
        #expect(breaker.admit(now: t) == .reject(retryAfterNanoseconds: 0))
    }

    @Test("halfOpenProbes successful probes close the breaker and reset its counters")
    func successfulProbesClose() {
        var breaker = consecutiveBreaker()
        trip(&breaker, now: 0)
        let t = 5 * Self.second
        for _ in 0..<3 { #expect(breaker.admit(now: t) == .probe) }
        #expect(breaker.record(success: true, probe: true, now: t) == nil)
        #expect(breaker.record(success: true, probe: true, now: t) == nil)
        let transition = breaker.record(success: true, probe: true, now: t)
        #expect(transition == BreakerState.Transition(from: .halfOpen, to: .closed))
        #expect(breaker.phase == .closed)
        #expect(breaker.admit(now: t) == .allow)
        #expect(breaker.consecutiveFailures == 0)
        #expect(breaker.callsInWindow(now: t) == 0)
        #expect(breaker.probesInFlight == 0)
    }

    @Test("A failed probe reopens the breaker, doubling the open time up to the maximum, and a close resets it")
    func failedProbeDoublesOpenTime() {
        var breaker = consecutiveBreaker(openDuration: .seconds(5), max: .seconds(12))
        trip(&breaker, now: 0)
        var now = 5 * Self.second
        // Round 1 fails: open for 10 s.
        #expect(breaker.admit(now: now) == .probe)
        #expect(breaker.record(success: false, probe: true, now: now) == BreakerState.Transition(from: .halfOpen, to: .open))
        #expect(breaker.admit(now: now) == .reject(retryAfterNanoseconds: 10 * Self.second))
        // Round 2 fails: 20 s capped at 12 s.
        now += 10 * Self.second
        #expect(breaker.admit(now: now) == .probe)
        #expect(breaker.record(success: false, probe: true, now: now) == BreakerState.Transition(from: .halfOpen, to: .open))
        #expect(breaker.admit(now: now) == .reject(retryAfterNanoseconds: 12 * Self.second))
        // Round 3 fails: still capped.
        now += 12 * Self.second
        #expect(breaker.admit(now: now) == .probe)
        _ = breaker.record(success: false, probe: true, now: now)
        #expect(breaker.admit(now: now) == .reject(retryAfterNanoseconds: 12 * Self.second))
        // Round 4 succeeds and closes; the next trip opens for the base time again.
        now += 12 * Self.second
        for _ in 0..<3 { #expect(breaker.admit(now: now) == .probe) }
        for _ in 0..<3 { _ = breaker.record(success: true, probe: true, now: now) }
        #expect(breaker.phase == .closed)
        trip(&breaker, now: now)
        #expect(breaker.admit(now: now) == .reject(retryAfterNanoseconds: 5 * Self.second))
    }

    @Test("Old buckets age out of the window")
    func bucketsAgeOut() {
        var breaker = ratioBreaker(minimumCalls: 10)
        // 8 failures at t = 0.5 s (bucket 0): not enough calls to judge.
        for _ in 0..<8 { _ = breaker.record(success: false, probe: false, now: Self.second / 2) }
        #expect(breaker.callsInWindow(now: Self.second / 2) == 8)
        #expect(breaker.callsInWindow(now: 9 * Self.second) == 8)
        // At t = 10 s bucket 0 has left the 10 s window.
        #expect(breaker.callsInWindow(now: 10 * Self.second) == 0)
        #expect(breaker.failuresInWindow(now: 10 * Self.second) == 0)
        // Two more failures then do not reach minimumCalls together with the forgotten eight.
        _ = breaker.record(success: false, probe: false, now: 10 * Self.second)
        #expect(breaker.record(success: false, probe: false, now: 10 * Self.second) == nil)
        #expect(breaker.phase == .closed)
        #expect(breaker.callsInWindow(now: 10 * Self.second) == 2)
    }

    @Test("Failures within the window do add up across buckets")
    func bucketsAddUpWithinWindow() {
        var breaker = ratioBreaker(minimumCalls: 10)
        for i in 0..<9 { _ = breaker.record(success: false, probe: false, now: Int64(i) * Self.second) }
        #expect(breaker.phase == .closed)
        #expect(breaker.callsInWindow(now: 8 * Self.second) == 9)
        // The 10th failure at 9.9 s: all ten still in the window [0 s, 10 s).
        let transition = breaker.record(success: false, probe: false, now: 9 * Self.second + Self.second * 9 / 10)
        #expect(transition == BreakerState.Transition(from: .closed, to: .open))
    }

    @Test("cancelProbe frees a probe slot without counting as an outcome")
    func cancelProbeFreesSlot() {
        var breaker = consecutiveBreaker()
        trip(&breaker, now: 0)
        let t = 5 * Self.second
        for _ in 0..<3 { #expect(breaker.admit(now: t) == .probe) }
        #expect(breaker.admit(now: t) == .reject(retryAfterNanoseconds: 0))
        breaker.cancelProbe()
        #expect(breaker.probesInFlight == 2)
        #expect(breaker.probeSuccesses == 0)
        #expect(breaker.phase == .halfOpen)
        #expect(breaker.admit(now: t) == .probe)
        #expect(breaker.admit(now: t) == .reject(retryAfterNanoseconds: 0))
    }

    @Test("Outcomes of calls admitted while closed do not count in half-open")
    func lateClosedOutcomesIgnoredInHalfOpen() {
        var breaker = consecutiveBreaker()
        // Three calls go out while closed; the breaker then trips on other calls.
        for _ in 0..<3 { #expect(breaker.admit(now: 0) == .allow) }
        trip(&breaker, now: 0)
        // A late outcome while open changes nothing.
        #expect(breaker.record(success: false, probe: false, now: Self.second) == nil)
        #expect(breaker.admit(now: Self.second) == .reject(retryAfterNanoseconds: 4 * Self.second))
        let t = 5 * Self.second
        #expect(breaker.admit(now: t) == .probe)
        // Late outcomes in half-open: neither a failure reopens nor successes close, nor do they free slots.
        #expect(breaker.record(success: false, probe: false, now: t) == nil)
        #expect(breaker.record(success: true, probe: false, now: t) == nil)
        #expect(breaker.phase == .halfOpen)
        #expect(breaker.probesInFlight == 1)
        #expect(breaker.probeSuccesses == 0)
    }
}
