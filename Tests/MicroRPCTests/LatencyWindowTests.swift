@testable import MicroRPC
import Testing

/// The latency window the hedging delay is read from. Time is driven by hand; nothing sleeps.
@Suite("Latency window")
struct LatencyWindowTests {
    static let millisecond: Int64 = 1_000_000
    static let second: Int64 = 1_000_000_000

    /// `q`'s answer is the upper edge of the bucket holding `latency`: at or above it, within the bucket width
    /// (1/16 of the value) plus the microsecond rounding.
    static func inBucket(_ answer: Int64?, of latency: Int64) -> Bool {
        guard let answer else { return false }
        return answer > latency && answer <= latency + latency / 16 + 1_000
    }

    @Test("no quantile below minimumSamples")
    func belowMinimum() {
        let w = LatencyWindow(minimumSamples: 50)
        for i in 0..<49 { w.record(nanoseconds: Self.millisecond, now: Int64(i)) }
        #expect(w.quantile(0.95, now: 100) == nil)
        w.record(nanoseconds: Self.millisecond, now: 100)
        #expect(Self.inBucket(w.quantile(0.95, now: 100), of: Self.millisecond))
    }

    @Test("p95 of 95 samples at 1 ms and 5 at 50 ms is in the 1 ms bucket")
    func p95Low() {
        let w = LatencyWindow()
        for _ in 0..<95 { w.record(nanoseconds: Self.millisecond, now: 0) }
        for _ in 0..<5 { w.record(nanoseconds: 50 * Self.millisecond, now: 0) }
        #expect(Self.inBucket(w.quantile(0.95, now: 0), of: Self.millisecond))
        #expect(Self.inBucket(w.quantile(0.96, now: 0), of: 50 * Self.millisecond))
        #expect(Self.inBucket(w.quantile(1, now: 0), of: 50 * Self.millisecond))
        #expect(Self.inBucket(w.quantile(0, now: 0), of: Self.millisecond))
    }

    @Test("the cached quantile is reused for maxAge and per q, then recomputed; too few samples is not cached")
    func cachedQuantile() {
        let w = LatencyWindow(minimumSamples: 10)
        #expect(w.cachedQuantile(0.95, now: 0, maxAge: Self.millisecond) == nil)
        for _ in 0..<10 { w.record(nanoseconds: Self.millisecond, now: 0) }
        // Not cached while empty: the samples count at once.
        #expect(Self.inBucket(w.cachedQuantile(0.95, now: 0, maxAge: Self.millisecond), of: Self.millisecond))
        for _ in 0..<90 { w.record(nanoseconds: 50 * Self.millisecond, now: 0) }
        // Within maxAge the cached answer stands; another q is computed afresh; after maxAge it is recomputed.
        #expect(Self.inBucket(w.cachedQuantile(0.95, now: Self.millisecond - 1, maxAge: Self.millisecond), of: Self.millisecond))
        #expect(Self.inBucket(w.cachedQuantile(0.5, now: Self.millisecond - 1, maxAge: Self.millisecond), of: 50 * Self.millisecond))
        #expect(Self.inBucket(w.cachedQuantile(0.95, now: Self.millisecond, maxAge: Self.millisecond), of: 50 * Self.millisecond))
        // A clock reading behind the cache's is not trusted.
        #expect(Self.inBucket(w.cachedQuantile(0.95, now: 0, maxAge: Self.millisecond), of: 50 * Self.millisecond))
    }

    @Test("p95 of 90 samples at 1 ms and 10 at 50 ms is in the 50 ms bucket")
    func p95High() {
        let w = LatencyWindow()
        for _ in 0..<90 { w.record(nanoseconds: Self.millisecond, now: 0) }
        for _ in 0..<10 { w.record(nanoseconds: 50 * Self.millisecond, now: 0) }
        #expect(Self.inBucket(w.quantile(0.95, now: 0), of: 50 * Self.millisecond))
        #expect(Self.inBucket(w.quantile(0.5, now: 0), of: Self.millisecond))
    }

    @Test("every bucket's edge bounds the latencies counted in it, within 1/16")
    func bucketPrecision() {
        var latency: Int64 = 1_000
        while latency < 100 * Self.second {
            for v in [latency, latency + 1, latency * 3 / 2, latency * 2 - 1] {
                let edge = LatencyWindow.upperEdge(of: LatencyWindow.bucket(of: v))
                #expect(edge > v)
                #expect(edge <= v + v / 16 + 1_000, "\(v) ns answered as \(edge) ns")
            }
            latency *= 2
        }
        #expect(LatencyWindow.bucket(of: -5) == 0)
        #expect(LatencyWindow.bucket(of: .max) == LatencyWindow.bucketCount - 1)
    }

    @Test("samples age out after the window")
    func agesOut() {
        let w = LatencyWindow(window: .seconds(10), minimumSamples: 10)
        for _ in 0..<10 { w.record(nanoseconds: Self.millisecond, now: 1 * Self.second) }
        #expect(w.count(now: 4 * Self.second) == 10)
        #expect(w.count(now: 6 * Self.second) == 10, "the previous half is still read")
        #expect(w.quantile(0.5, now: 9 * Self.second) != nil)
        #expect(w.count(now: 10 * Self.second) == 0, "two halves later")
        #expect(w.quantile(0.5, now: 10 * Self.second) == nil)

        // New samples are counted, old ones not: 10 at 50 ms now, after 10 at 1 ms long ago.
        for _ in 0..<10 { w.record(nanoseconds: 50 * Self.millisecond, now: 11 * Self.second) }
        #expect(Self.inBucket(w.quantile(0, now: 11 * Self.second), of: 50 * Self.millisecond))
        #expect(w.count(now: 100 * Self.second) == 0, "a long gap clears both halves")
    }

    @Test("concurrent records from a task group are all counted")
    func concurrentRecords() async {
        let w = LatencyWindow()
        let tasks = 8
        let perTask = 5_000
        // Settle the first rotation before the tasks start: a record racing a rotation may be lost (documented).
        #expect(w.count(now: Self.second) == 0)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                group.addTask {
                    for i in 0..<perTask {
                        w.record(nanoseconds: Int64(1 + (t * perTask + i) % 1000) * 1_000, now: Self.second)
                    }
                }
            }
        }
        #expect(w.count(now: Self.second) == tasks * perTask)
        #expect(w.quantile(0.95, now: Self.second) != nil)
    }
}
