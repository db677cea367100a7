internal import Synchronization

/// One token bucket (GCRA, as in ``RateLimiter``) per key, e.g. per caller identity, all with the same rate
/// and burst; safe to share between threads.
///
/// Memory is bounded: at most `maxKeys` keys are tracked. When a new key arrives at a full table, a cleanup
/// first drops every idle key (its TAT is not after `now`, so it is at full burst and forgetting it changes
/// nothing). If that frees fewer than an eighth of the table, the keys with the oldest TAT (the closest to
/// full burst) are evicted until it has; the new key is never refused for lack of room. The cleanup scans
/// the table, but it runs only when the table is full and then frees at least `maxKeys / 8` slots (at least
/// one), so its cost is amortized over the insertions that follow.
///
/// Not promised: a key evicted while not at full burst gets its whole burst back when it returns (the
/// documented imprecision; it takes more than `maxKeys` busy keys at once). Fairness and ordering between
/// callers of one key are not promised either. The table is guarded by one `Mutex`, so all keys contend on it.
public final class KeyedRateLimiter: Sendable {
    private struct Table: ~Copyable {
        /// The TAT of each key, in monotonic nanoseconds.
        var tats: [String: Int64] = [:]
        /// The key of the latest call and its index in `tats` (valid until a key is added or removed): most calls
        /// name the key the previous call named, and comparing it (usually the same interned storage) is cheaper
        /// than hashing it.
        var lastKey: String?
        var lastIndex: Dictionary<String, Int64>.Index?
    }

    /// The per-key TATs; guarded by the mutex itself.
    private let table = Mutex(Table())
    private let interval: Int64
    private let tolerance: Int64
    public let maxKeys: Int
    /// How many slots a cleanup frees at least.
    private let cleanupBatch: Int

    public init(ratePerSecond: Double, burst: Int, maxKeys: Int = 10_000) {
        precondition(ratePerSecond > 0 && ratePerSecond.isFinite, "ratePerSecond must be > 0")
        precondition(burst >= 1, "burst must be >= 1")
        precondition(maxKeys >= 1, "maxKeys must be >= 1")
        interval = RateLimiter.interval(ratePerSecond: ratePerSecond)
        tolerance = RateLimiter.tolerance(interval: interval, burst: burst)
        self.maxKeys = maxKeys
        cleanupBatch = max(1, maxKeys / 8)
    }

    /// The number of keys tracked now (at most `maxKeys`).
    var count: Int {
        table.withLock { $0.tats.count }
    }

    /// Takes one token of `key`'s bucket if there is one at `now`; a refused call changes nothing.
    public func tryAcquire(_ key: String, now: Int64) -> Bool {
        table.withLock { table in
            let i: Dictionary<String, Int64>.Index
            if let lastKey = table.lastKey, let lastIndex = table.lastIndex, lastKey == key {
                i = lastIndex
            } else if let found = table.tats.index(forKey: key) {
                i = found
                table.lastKey = key
                table.lastIndex = found
            } else {
                // A new key is at full burst, so its first call always passes (burst >= 1).
                if table.tats.count >= maxKeys {
                    makeRoom(in: &table, now: now)
                }
                table.tats[key] = RateLimiter.admit(tat: .min, now: now, interval: interval, tolerance: tolerance)
                table.lastKey = nil  // the insertion may have moved every index
                table.lastIndex = nil
                return true
            }
            guard let next = RateLimiter.admit(tat: table.tats.values[i], now: now, interval: interval, tolerance: tolerance) else {
                return false
            }
            table.tats.values[i] = next
            return true
        }
    }

    /// Nanoseconds from `now` until `key` has a token; 0 if it has one now (an unknown key has its full burst).
    public func retryAfter(_ key: String, now: Int64) -> Int64 {
        table.withLock { table in
            guard let tat = table.tats[key] else { return 0 }
            return RateLimiter.retryAfter(tat: tat, now: now, tolerance: tolerance)
        }
    }

    /// Frees at least `cleanupBatch` slots: idle keys first, then the oldest TATs.
    private func makeRoom(in table: inout Table, now: Int64) {
        let before = table.tats.count
        table.tats = table.tats.filter { $0.value > now }
        let stillNeeded = cleanupBatch - (before - table.tats.count)
        guard stillNeeded > 0, !table.tats.isEmpty else { return }
        // The k-th oldest TAT: evict everything older, then keys at exactly that TAT until k are gone (so a tie
        // does not evict more busy keys than needed).
        let sorted = table.tats.values.sorted()
        let cutoff = sorted[min(stillNeeded, sorted.count) - 1]
        var evictAtCutoff = stillNeeded - sorted.prefix { $0 < cutoff }.count
        table.tats = table.tats.filter { entry in
            if entry.value < cutoff { return false }
            if entry.value == cutoff && evictAtCutoff > 0 {
                evictAtCutoff -= 1
                return false
            }
            return true
        }
    }
}
