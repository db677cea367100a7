import Testing
@testable import MicroMiddleware

@Suite("RateLimiter")
struct RateLimiterTests {
    private static let millisecond: Int64 = 1_000_000
    private static let second: Int64 = 1_000_000_000

    @Test("A burst passes at once, then calls are refused until the next interval")
    func burstThenRefusal() {
        let limiter = RateLimiter(ratePerSecond: 10, burst: 5)
        let now = 7 * Self.second
        for _ in 0..<5 { #expect(limiter.tryAcquire(now: now)) }
        #expect(!limiter.tryAcquire(now: now))
        #expect(limiter.retryAfter(now: now) == 100 * Self.millisecond)
        #expect(!limiter.tryAcquire(now: now + 100 * Self.millisecond - 1))
        #expect(limiter.retryAfter(now: now + 100 * Self.millisecond - 1) == 1)
        #expect(limiter.tryAcquire(now: now + 100 * Self.millisecond))
        #expect(!limiter.tryAcquire(now: now + 100 * Self.millisecond))
    }

    @Test("A refused call changes nothing")
    func refusalChangesNothing() {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 1)
        #expect(limiter.tryAcquire(now: 0))
        for i in 0..<100 { #expect(!limiter.tryAcquire(now: Int64(i) * Self.millisecond)) }
        // Had the refusals moved the TAT, the token would come later than 1 s.
        #expect(limiter.retryAfter(now: 0) == Self.second)
        #expect(limiter.tryAcquire(now: Self.second))
    }

    @Test("After idleness exactly the burst is available again, not more")
    func idleRefillsToBurstOnly() {
        let limiter = RateLimiter(ratePerSecond: 100, burst: 4)
        for _ in 0..<4 { #expect(limiter.tryAcquire(now: 0)) }
        #expect(!limiter.tryAcquire(now: 0))
        let later = 3_600 * Self.second
        #expect(limiter.retryAfter(now: later) == 0)
        for _ in 0..<4 { #expect(limiter.tryAcquire(now: later)) }
        #expect(!limiter.tryAcquire(now: later))
    }

    @Test("Over 10 s of attempts every millisecond, rate x time + burst calls pass", arguments: [
        (100.0, 10), (1_000.0, 1), (3.0, 2),
    ])
    func holdsRateOverTime(rate: Double, burst: Int) {
        let limiter = RateLimiter(ratePerSecond: rate, burst: burst)
        var admitted = 0
        var now: Int64 = 0
        while now <= 10 * Self.second {
            if limiter.tryAcquire(now: now) { admitted += 1 }
            now += Self.millisecond
        }
        let expected = Int(rate * 10) + burst
        #expect(abs(admitted - expected) <= 1, "admitted \(admitted), expected \(expected)")
    }

    @Test("A rate whose interval is rounded does not drift over an hour")
    func noDriftOverAnHour() {
        // 1e9 / 7 = 142_857_142.86 ns, rounded to 142_857_143.
        let limiter = RateLimiter(ratePerSecond: 7, burst: 5)
        #expect(limiter.interval == 142_857_143)
        var admitted = 0
        var now: Int64 = 0
        while now <= 3_600 * Self.second {
            if limiter.tryAcquire(now: now) { admitted += 1 }
            now += 10 * Self.millisecond
        }
        #expect(abs(admitted - (7 * 3_600 + 5)) <= 1, "admitted \(admitted)")
    }

    @Test("Concurrent callers never get more than the burst at one instant")
    func concurrentAcquireNeverOveradmits() async {
        let limiter = RateLimiter(ratePerSecond: 1, burst: 50)
        let now = 42 * Self.second
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var mine = 0
                    for _ in 0..<500 where limiter.tryAcquire(now: now) { mine += 1 }
                    return mine
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 50)
        #expect(limiter.retryAfter(now: now) == Self.second)
    }
}

@Suite("KeyedRateLimiter")
struct KeyedRateLimiterTests {
    private static let second: Int64 = 1_000_000_000

    @Test("Each key has its own bucket")
    func keysAreIndependent() {
        let limiter = KeyedRateLimiter(ratePerSecond: 1, burst: 2)
        #expect(limiter.tryAcquire("alice", now: 0))
        #expect(limiter.tryAcquire("alice", now: 0))
        #expect(!limiter.tryAcquire("alice", now: 0))
        #expect(limiter.retryAfter("alice", now: 0) == Self.second)
        #expect(limiter.retryAfter("bob", now: 0) == 0)
        #expect(limiter.tryAcquire("bob", now: 0))
        #expect(limiter.tryAcquire("bob", now: 0))
        #expect(!limiter.tryAcquire("bob", now: 0))
        #expect(limiter.tryAcquire("alice", now: Self.second))
        #expect(limiter.count == 2)
    }

    @Test("The table never holds more than maxKeys keys, and new keys are never refused for lack of room")
    func boundedByMaxKeys() {
        let limiter = KeyedRateLimiter(ratePerSecond: 1, burst: 2, maxKeys: 16)
        // All at one instant: no key is idle, so room is made by eviction.
        for i in 0..<1_000 {
            #expect(limiter.tryAcquire("key-\(i)", now: 0))
            #expect(limiter.count <= 16)
        }
        #expect(limiter.count >= 1)
    }

    @Test("When full, idle keys are dropped first and busy keys keep their state")
    func idleKeysDroppedFirst() {
        let limiter = KeyedRateLimiter(ratePerSecond: 1, burst: 2, maxKeys: 4)
        // "busy" spends its burst (TAT 2 s); the others one token each (TAT 1 s).
        #expect(limiter.tryAcquire("busy", now: 0))
        #expect(limiter.tryAcquire("busy", now: 0))
        for key in ["b", "c", "d"] { #expect(limiter.tryAcquire(key, now: 0)) }
        #expect(limiter.count == 4)
        // At 1.5 s b, c and d are idle (TAT 1 s), "busy" is not.
        let now = Self.second * 3 / 2
        #expect(limiter.tryAcquire("new", now: now))
        #expect(limiter.count == 2)
        // "busy" kept its TAT: one token (TAT 2 s -> 3 s), then refused.
        #expect(limiter.tryAcquire("busy", now: now))
        #expect(!limiter.tryAcquire("busy", now: now))
    }

    @Test("When full and nothing is idle, the key with the oldest TAT is evicted")
    func oldestTATEvicted() {
        // maxKeys 8: a cleanup frees max(1, 8 / 8) = 1 slot.
        let limiter = KeyedRateLimiter(ratePerSecond: 1, burst: 3, maxKeys: 8)
        for _ in 0..<3 { #expect(limiter.tryAcquire("heavy", now: 0)) }
        for i in 0..<7 { #expect(limiter.tryAcquire("light-\(i)", now: 0)) }
        #expect(limiter.count == 8)
        #expect(limiter.tryAcquire("new", now: 0))
        #expect(limiter.count == 8)
        // "heavy" (TAT 3 s, the newest) was not the one evicted: still refused.
        #expect(!limiter.tryAcquire("heavy", now: 0))
        #expect(limiter.retryAfter("heavy", now: 0) == Self.second)
    }
}
