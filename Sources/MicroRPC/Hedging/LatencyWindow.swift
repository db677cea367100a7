import Synchronization

/// A lock-free histogram of the latencies of recent calls, from which a client reads a quantile (the hedging delay
/// is the observed p95).
///
/// Buckets are log-linear (as HdrHistogram's): latencies are counted in microseconds, exactly below 16 µs and with
/// 16 buckets per power of two above, so a bucket is at most 1/16 (6.25%) wider than its lower edge. 384 buckets
/// cover up to 2^27 µs (about 134 s); longer latencies are counted in the last bucket.
///
/// "Recent" is two halves of `window`: records go to the current half, a quantile reads both, and when the current
/// half is older than `window / 2` the older half is cleared and becomes current. So a sample counts for between
/// `window / 2` and `window` after it was recorded. Halves rotate on `record` and `quantile` calls (there is no
/// timer); exactly one thread wins the rotation (a compare-exchange on the epoch) and clears.
///
/// Thread-safe. `record` is an atomic load, usually, and one atomic add; it never allocates or locks. `quantile`
/// scans the buckets twice (768 relaxed loads each): cheap, but a caller that needs it per call may cache it for a
/// while.
///
/// Not promised:
/// - exact counts across a rotation: a record racing the rotation may land in the half being cleared and be lost,
///   or land in the previous half; a quantile racing records or a rotation reads a mix of before and after;
/// - precision finer than a bucket: `quantile` answers the upper edge of the bucket the quantile falls in;
/// - sensible results for `now` values that go back by more than half a window (such a record goes to the
///   current half).
public final class LatencyWindow: Sendable {
    /// Mantissa bits: 2^4 = 16 buckets per power of two.
    static let subBucketBits = 4
    static let subBucketCount = 1 << subBucketBits
    /// Octaves above the linear range: values up to 2^27 - 1 µs.
    static let maxMicrosecondsBits = 27
    static let maxMicroseconds: Int64 = (1 << maxMicrosecondsBits) - 1
    /// The linear range (one block) plus one block per octave from 2^subBucketBits to 2^(maxMicrosecondsBits - 1).
    static let bucketCount = (maxMicrosecondsBits - subBucketBits + 1) * subBucketCount  // 384
    static let halfCount = 2

    public let window: Duration
    public let minimumSamples: Int
    /// The length of a half, in nanoseconds (at least 1).
    private let halfNanos: Int64
    /// `halfCount * bucketCount` counters: half h's bucket b is at `h * bucketCount + b`. Relaxed adds and loads: the
    /// counts are statistics, no other memory is published through them.
    private let counts: InlineArray<768, Atomic<Int>>
    /// The half-window epoch (`now / halfNanos`, floored) whose samples the current half holds; the other half holds
    /// `epoch - 1`'s. Only the thread whose compare-exchange moves it clears halves.
    private let epoch = Atomic<Int64>(.min)
    /// ``cachedQuantile(_:now:maxAge:)``'s cache: odd while a writer fills it, 0 while empty.
    private let cacheSequence = Atomic<UInt64>(0)
    private let cacheAt = Atomic<Int64>(0)
    private let cacheQ = Atomic<UInt64>(0)
    private let cacheValue = Atomic<Int64>(0)

    public init(window: Duration = .seconds(10), minimumSamples: Int = 50) {
        precondition(Self.halfCount * Self.bucketCount == 768, "the counters' inline size")
        self.window = window
        self.minimumSamples = max(1, minimumSamples)
        let c = window.components
        let nanos: Int64 = c.seconds < 0 ? 0
            : c.seconds >= Int64.max / 1_000_000_000 ? .max
            : c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
        halfNanos = max(1, nanos / 2)
        counts = InlineArray { _ in Atomic(0) }
    }

    /// Counts a call that took `nanoseconds` (negative is taken as 0), at monotonic time `now`.
    public func record(nanoseconds: Int64, now: Int64) {
        let e = epoch(of: now)
        let current = advance(to: e)
        // A `now` a little behind another thread's belongs to the previous half, which still holds its epoch.
        let target = e == current - 1 ? e : current
        let index = Self.half(of: target) * Self.bucketCount + Self.bucket(of: nanoseconds)
        counts[index].wrappingAdd(1, ordering: .relaxed)
    }

    /// The latency under which a fraction `q` (clamped to 0...1) of the recent calls fall, as the upper edge (in
    /// nanoseconds, exclusive) of the bucket the quantile lands in; nil with fewer than `minimumSamples` recent calls
    /// or for a NaN `q`.
    public func quantile(_ q: Double, now: Int64) -> Int64? {
        guard !q.isNaN else { return nil }
        advance(to: epoch(of: now))
        let total = count(now: now)
        guard total >= minimumSamples else { return nil }
        // The epsilon keeps 0.95 * 100 (not exactly 95 in binary) from rounding up to rank 96.
        let rank = max(1, min(total, Int((min(1, max(0, q)) * Double(total) - 1e-9).rounded(.up))))
        var seen = 0
        var last = 0
        for b in 0..<Self.bucketCount {
            var n = 0
            for h in 0..<Self.halfCount { n += counts[h * Self.bucketCount + b].load(ordering: .relaxed) }
            if n == 0 { continue }
            seen += n
            last = b
            if seen >= rank { return Self.upperEdge(of: b) }
        }
        // Records cleared by a rotation between the two scans: the highest bucket seen is the best answer.
        return Self.upperEdge(of: last)
    }

    /// ``quantile(_:now:)``, computed at most once per `maxAge` (per `q`): a hedged call reads its delay here, so that
    /// the buckets are scanned about once a millisecond, not once per call. A result may be up to `maxAge` old; nil
    /// (too few samples) is never cached.
    /// Lock-free: the cache is a sequence lock (a writer that finds another one writing computes without caching).
    public func cachedQuantile(_ q: Double, now: Int64, maxAge: Int64 = 1_000_000) -> Int64? {
        let s1 = cacheSequence.load(ordering: .acquiring)
        if s1 & 1 == 0 && s1 != 0 {
            let at = cacheAt.load(ordering: .acquiring)
            let qBits = cacheQ.load(ordering: .acquiring)
            let value = cacheValue.load(ordering: .acquiring)
            if cacheSequence.load(ordering: .acquiring) == s1, qBits == q.bitPattern, now &- at >= 0, now &- at < maxAge {
                return value
            }
        }
        // Too few samples is not cached: the window is warming up, and the first answer should come at once.
        guard let value = quantile(q, now: now) else { return nil }
        let s = cacheSequence.load(ordering: .relaxed)
        if s & 1 == 0, cacheSequence.compareExchange(expected: s, desired: s &+ 1, ordering: .acquiring).exchanged {
            cacheAt.store(now, ordering: .relaxed)
            cacheQ.store(q.bitPattern, ordering: .relaxed)
            cacheValue.store(value, ordering: .relaxed)
            cacheSequence.store(s &+ 2, ordering: .releasing)
        }
        return value
    }

    /// The number of recent calls counted.
    public func count(now: Int64) -> Int {
        advance(to: epoch(of: now))
        var total = 0
        for i in 0..<(Self.halfCount * Self.bucketCount) { total += counts[i].load(ordering: .relaxed) }
        return total
    }

    /// `now / halfNanos`, floored (so that negative readings do not share epoch 0).
    private func epoch(of now: Int64) -> Int64 {
        now >= 0 ? now / halfNanos : (now + 1) / halfNanos - 1
    }

    /// Moves the current epoch forward to `e` if it is behind, clearing the halves that fell out of the window;
    /// returns the current epoch.
    @discardableResult
    private func advance(to e: Int64) -> Int64 {
        var current = epoch.load(ordering: .acquiring)
        while e > current {
            let (exchanged, original) = epoch.compareExchange(
                expected: current, desired: e, ordering: .acquiringAndReleasing)
            if exchanged {
                // One step: the old previous half becomes current. Two or more: both are stale.
                let (steps, overflow) = e.subtractingReportingOverflow(current)
                let stale = overflow || steps >= Int64(Self.halfCount) ? Self.halfCount : Int(steps)
                for k in 0..<stale { clear(half: Self.half(of: e - Int64(k))) }
                return e
            }
            current = original
        }
        return current
    }

    private func clear(half h: Int) {
        for b in 0..<Self.bucketCount { counts[h * Self.bucketCount + b].store(0, ordering: .relaxed) }
    }

    /// The half an epoch's samples live in (works for negative epochs).
    private static func half(of e: Int64) -> Int {
        Int(e & Int64(halfCount - 1))
    }

    /// The bucket of a latency: microseconds below 2^subBucketBits are their own bucket; above, the power of two
    /// picks a block and the next `subBucketBits` bits the bucket in it.
    static func bucket(of nanoseconds: Int64) -> Int {
        let us = min(maxMicroseconds, max(0, nanoseconds) / 1000)
        if us < Int64(subBucketCount) { return Int(us) }
        let exponent = 63 - us.leadingZeroBitCount  // >= subBucketBits
        let shift = exponent - subBucketBits
        let mantissa = Int(us >> shift) & (subBucketCount - 1)
        return (shift + 1) * subBucketCount + mantissa
    }

    /// The exclusive upper edge of a bucket, in nanoseconds: every latency counted in it is below.
    static func upperEdge(of bucket: Int) -> Int64 {
        if bucket < subBucketCount { return Int64(bucket + 1) * 1000 }
        let shift = bucket / subBucketCount - 1
        let mantissa = Int64(bucket % subBucketCount)
        let upperMicroseconds = (Int64(subBucketCount) + mantissa + 1) << shift
        return upperMicroseconds * 1000
    }
}
