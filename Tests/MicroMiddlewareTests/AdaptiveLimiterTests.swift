@testable import MicroMiddleware
import Testing

/// The adaptive concurrency limit: Gradient2 and AIMD on their own, and the limiter that admits calls with them.
/// Time is driven by hand (`now` advances a microsecond per completed call); nothing sleeps.
@Suite("Adaptive concurrency limit")
struct AdaptiveLimiterTests {
    static let millisecond: Int64 = 1_000_000

    /// A closed-loop load that keeps the server saturated: before each completion it opens as many calls as the
    /// limiter admits, then completes the oldest one with the given RTT, a microsecond after the previous one.
    struct SaturatingLoad {
        var now: Int64 = 0
        /// Calls admitted and not yet released by this load.
        var open = 0
        /// Calls the limiter admitted, in all.
        var admitted = 0

        mutating func run(_ limiter: AdaptiveLimiter, rtt: Int64, calls: Int, dropped: Bool = false) {
            for _ in 0..<calls {
                while limiter.tryAcquire() {
                    open += 1
                    admitted += 1
                }
                guard open > 0 else { continue }
                now += 1_000
                open -= 1
                limiter.release(rttNanoseconds: rtt, dropped: dropped, now: now)
            }
        }

        /// Releases every open call.
        mutating func drain(_ limiter: AdaptiveLimiter, rtt: Int64) {
            while open > 0 {
                now += 1_000
                open -= 1
                limiter.release(rttNanoseconds: rtt, dropped: false, now: now)
            }
        }
    }

    static func gradient(sampleWindow: Int = 10) -> AdaptiveConcurrencyConfiguration {
        // A long update interval: windows close on their sample count only, so the tests count updates exactly.
        AdaptiveConcurrencyConfiguration(algorithm: .gradient, sampleWindow: sampleWindow, updateInterval: .seconds(3600))
    }

    static func aimd(initialLimit: Int = 20) -> AdaptiveConcurrencyConfiguration {
        AdaptiveConcurrencyConfiguration(
            algorithm: .aimd, initialLimit: initialLimit, sampleWindow: 10, updateInterval: .seconds(3600))
    }

    @Test("when the handler slows down 5x the gradient limit falls to near minLimit and admission stops there")
    func gradientFallsWhenRTTRises() {
        let limiter = AdaptiveLimiter(Self.gradient())
        var load = SaturatingLoad()
        load.run(limiter, rtt: Self.millisecond, calls: 300)
        let before = limiter.limit
        #expect(before > 20, "steady latency under saturation probes upward")

        load.run(limiter, rtt: 5 * Self.millisecond, calls: 600)
        load.drain(limiter, rtt: 5 * Self.millisecond)
        let slow = limiter.limit
        #expect(slow >= 4)
        #expect(slow <= 8, "5x RTT pushes the limit to near minLimit (4); was \(before), now \(slow)")
        #expect(slow * 4 <= before)

        // Admission refuses exactly at the limit.
        #expect(limiter.inFlight == 0)
        let rejectedBefore = limiter.rejected
        for _ in 0..<slow { #expect(limiter.tryAcquire()) }
        #expect(!limiter.tryAcquire())
        #expect(limiter.rejected == rejectedBefore + 1)
        #expect(limiter.inFlight == slow)
        for _ in 0..<slow {
            load.now += 1_000
            limiter.release(rttNanoseconds: 5 * Self.millisecond, dropped: false, now: load.now)
        }
        #expect(limiter.inFlight == 0)
    }

    @Test("when the RTT recovers the gradient limit rises again")
    func gradientRecovers() {
        let limiter = AdaptiveLimiter(Self.gradient())
        var load = SaturatingLoad()
        load.run(limiter, rtt: Self.millisecond, calls: 300)
        load.run(limiter, rtt: 5 * Self.millisecond, calls: 600)
        let slow = limiter.limit
        #expect(slow <= 8)

        load.run(limiter, rtt: Self.millisecond, calls: 1000)
        #expect(limiter.limit >= 3 * slow, "limit after recovery: \(limiter.limit), when slow: \(slow)")
    }

    @Test("a gradient limit that is not used does not grow")
    func gradientAppLimited() {
        var limit = GradientLimit(initialLimit: 20)
        for _ in 0..<1000 { _ = limit.update(shortRTT: Self.millisecond, inFlight: 5, dropped: false) }
        #expect(limit.limit == 20)
        for _ in 0..<10 { _ = limit.update(shortRTT: Self.millisecond, inFlight: 20, dropped: false) }
        #expect(limit.limit > 20, "used, it grows")
    }

    @Test("the long-term RTT decays toward a much lower short RTT")
    func gradientLongRTTDecays() {
        var limit = GradientLimit(initialLimit: 20)
        for _ in 0..<20 { _ = limit.update(shortRTT: 10 * Self.millisecond, inFlight: 20, dropped: false) }
        let high = limit.longRTT
        for _ in 0..<20 { _ = limit.update(shortRTT: Self.millisecond, inFlight: 20, dropped: false) }
        // An EMA over 600 updates alone would have moved it by under 7%; the decay takes 5% more per update.
        #expect(limit.longRTT < high * 0.5)
    }

    @Test("AIMD backs off multiplicatively on dropped calls, down to minLimit")
    func aimdBacksOff() {
        let limiter = AdaptiveLimiter(Self.aimd())
        var load = SaturatingLoad()
        load.run(limiter, rtt: Self.millisecond, calls: 10, dropped: true)
        #expect(limiter.limit == 18, "20 * 0.9")
        load.run(limiter, rtt: Self.millisecond, calls: 10, dropped: true)
        #expect(limiter.limit == 16, "18 * 0.9 = 16.2")
        load.run(limiter, rtt: Self.millisecond, calls: 500, dropped: true)
        #expect(limiter.limit == 4)
    }

    @Test("AIMD treats an RTT over the latency threshold (5 s by default) as a drop")
    func aimdThreshold() {
        let limiter = AdaptiveLimiter(Self.aimd())
        var load = SaturatingLoad()
        load.run(limiter, rtt: 6000 * Self.millisecond, calls: 10)
        #expect(limiter.limit == 18)
    }

    @Test("AIMD grows by one per window when the limit is used, and not when it is not")
    func aimdGrowsAdditively() {
        let limiter = AdaptiveLimiter(Self.aimd())
        var load = SaturatingLoad()
        load.run(limiter, rtt: Self.millisecond, calls: 10)
        #expect(limiter.limit == 21)
        load.run(limiter, rtt: Self.millisecond, calls: 50)
        #expect(limiter.limit == 26)
        load.drain(limiter, rtt: Self.millisecond)

        // One call at a time: 1 in flight is under half the limit.
        let used = limiter.limit
        var now = load.now
        for _ in 0..<100 {
            #expect(limiter.tryAcquire())
            now += 1_000
            limiter.release(rttNanoseconds: Self.millisecond, dropped: false, now: now)
        }
        #expect(limiter.limit <= used + 1, "at most the window the drain left open counted as used")
    }

    @Test("limits stay within [minLimit, maxLimit], and the configuration is clamped")
    func bounds() {
        var aimd = AIMDLimit(initialLimit: 5, minLimit: 3, maxLimit: 8)
        for _ in 0..<100 {
            let l = aimd.update(shortRTT: 1, inFlight: 1000, dropped: false)
            #expect((3...8).contains(l))
        }
        #expect(aimd.limit == 8)
        for _ in 0..<100 {
            let l = aimd.update(shortRTT: 1, inFlight: 1000, dropped: true)
            #expect((3...8).contains(l))
        }
        #expect(aimd.limit == 3)

        var gradient = GradientLimit(initialLimit: 10, minLimit: 3, maxLimit: 30)
        for _ in 0..<500 {
            let l = gradient.update(shortRTT: Self.millisecond, inFlight: 1000, dropped: false)
            #expect((3...30).contains(l))
        }
        #expect(gradient.limit == 30)
        for _ in 0..<50 {
            let l = gradient.update(shortRTT: 100 * Self.millisecond, inFlight: 1000, dropped: false)
            #expect((3...30).contains(l))
        }
        // With the gradient at its floor (0.5) the queue allowance sqrt(limit) holds the limit near 4.
        #expect(gradient.limit <= 5, "100x the RTT: down to near the floor")
        // Long enough for the long-term RTT to learn the new latency as normal: the limit grows back, to maxLimit.
        for _ in 0..<2000 {
            let l = gradient.update(shortRTT: 100 * Self.millisecond, inFlight: 1000, dropped: false)
            #expect((3...30).contains(l))
        }
        #expect(gradient.limit == 30)

        let odd = AdaptiveLimiter(AdaptiveConcurrencyConfiguration(initialLimit: 5000, minLimit: 0, maxLimit: -1))
        #expect(odd.limit == 1, "min becomes 1, max at least min, initial clamped into them")
        #expect(AdaptiveLimiter(AdaptiveConcurrencyConfiguration(initialLimit: 1, minLimit: 4)).limit == 4)
    }

    @Test("a window closes on the update interval when it has fewer samples than sampleWindow")
    func updateInterval() {
        let limiter = AdaptiveLimiter(AdaptiveConcurrencyConfiguration(
            algorithm: .aimd, sampleWindow: 100, updateInterval: .milliseconds(100)))
        #expect(limiter.tryAcquire())
        limiter.release(rttNanoseconds: 1, dropped: true, now: 0)
        #expect(limiter.limit == 20, "one sample, 0 ms into the window")
        #expect(limiter.tryAcquire())
        limiter.release(rttNanoseconds: 1, dropped: false, now: 100 * Self.millisecond)
        #expect(limiter.limit == 18, "the window's drop, at the interval")
    }

    @Test("in-flight accounting balances under concurrent acquires and releases")
    func accountingBalances() async {
        let limiter = AdaptiveLimiter(AdaptiveConcurrencyConfiguration(initialLimit: 8, minLimit: 8, maxLimit: 8))
        let tasks = 8
        let attempts = 2_000
        let admitted = await withTaskGroup(of: Int.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    var admitted = 0
                    for i in 0..<attempts where limiter.tryAcquire() {
                        admitted += 1
                        #expect(limiter.inFlight <= 8 + tasks, "never far above the limit")
                        limiter.release(rttNanoseconds: 1_000, dropped: false, now: Int64(t * attempts + i) * 1_000)
                    }
                    return admitted
                }
            }
            return await group.reduce(0, +)
        }
        #expect(limiter.inFlight == 0)
        #expect(admitted + limiter.rejected == tasks * attempts)
        #expect(admitted > 0)
    }
}
