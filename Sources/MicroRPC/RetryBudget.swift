internal import MicroCore
import Glibc
import Synchronization

/// Caps retries so that they can never multiply load (Finagle's, linkerd's and Envoy's retry budget): over a
/// sliding window, retries may be at most `ratio` of the calls made, plus `minPerSecond` per second so that a
/// client with little traffic can still retry.
///
/// Thread-safe. A call is counted with one atomic add while its slot of the window is current (the lock is taken
/// once per slot change); a retry takes the lock.
public final class RetryBudget: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Retries allowed per call made, e.g. 0.2 = 20%.
        public var ratio: Double
        /// Retries allowed per second regardless of traffic.
        public var minPerSecond: Int
        /// The window the counts cover.
        public var window: Duration

        public init(ratio: Double = 0.2, minPerSecond: Int = 10, window: Duration = .seconds(10)) {
            self.ratio = max(0, ratio)
            self.minPerSecond = max(0, minPerSecond)
            self.window = window
        }
    }

    /// Counts per slot of the window (ten slots).
    struct Slots: ~Copyable {
        var calls: [Int]
        var retries: [Int]
        /// The slot index of the current slot's start, in slot units since `origin`.
        var current: Int64 = 0
    }

    static let slotCount = 10
    public let configuration: Configuration
    private let slotNanos: Int64
    private let slots: Mutex<Slots>
    /// The slot `pendingCalls` count for: calls made while it is current are only added to `pendingCalls`.
    private let pendingSlot = Atomic<Int64>(-1)
    /// Calls of `pendingSlot` not yet folded into `slots`.
    private let pendingCalls = Atomic<Int>(0)

    public init(_ configuration: Configuration = Configuration()) {
        self.configuration = configuration
        let w = configuration.window.components
        let nanos = min(w.seconds, 1_000_000_000) * 1_000_000_000 + w.attoseconds / 1_000_000_000
        slotNanos = max(1_000_000, nanos / Int64(Self.slotCount))
        slots = Mutex(Slots(calls: Array(repeating: 0, count: Self.slotCount), retries: Array(repeating: 0, count: Self.slotCount)))
    }

    /// The current slot, from the coarse monotonic clock: slots are a second long, and the coarse clock is read
    /// without a system call or a conversion, once per call.
    private func slotIndex() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return (Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)) / slotNanos
    }

    /// Moves the window to `now`, clearing slots that fell out of it.
    private static func advance(_ s: inout Slots, to index: Int64) {
        if index <= s.current { return }
        let steps = min(Int64(slotCount), index - s.current)
        for k in 1...steps {
            let i = Int((s.current + k) % Int64(slotCount))
            s.calls[i] = 0
            s.retries[i] = 0
        }
        s.current = index
    }

    /// Records a call (the first attempt).
    public func recordCall() {
        let index = slotIndex()
        if pendingSlot.load(ordering: .acquiring) == index {
            pendingCalls.wrappingAdd(1, ordering: .relaxed)
            return
        }
        slots.withLock { s in
            // A reading taken before a slow lock may be older than the window's slot: never go back.
            let now = max(index, s.current)
            fold(&s, now: now)
            Self.advance(&s, to: now)
            s.calls[Int(now % Int64(Self.slotCount))] += 1
            if now > pendingSlot.load(ordering: .relaxed) { pendingSlot.store(now, ordering: .releasing) }
        }
    }

    /// Adds the calls counted atomically to their slot (under the lock); drops them when that slot left the
    /// window. `now` is at least `s.current`, which is at least `pendingSlot`. A call that raced with a slot
    /// change is counted in the next slot: off by at most a tenth of the window.
    private func fold(_ s: inout Slots, now index: Int64) {
        let pending = pendingCalls.exchange(0, ordering: .relaxed)
        let slot = pendingSlot.load(ordering: .relaxed)
        guard pending > 0, slot >= 0, slot <= index, slot > index - Int64(Self.slotCount) else { return }
        Self.advance(&s, to: slot)
        s.calls[Int(slot % Int64(Self.slotCount))] += pending
    }

    /// Takes one retry from the budget; false when it is spent.
    public func tryRetry() -> Bool {
        let index = slotIndex()
        let windowSeconds = Double(configuration.window.components.seconds) + Double(configuration.window.components.attoseconds) / 1e18
        return slots.withLock { s in
            let now = max(index, s.current)
            fold(&s, now: now)
            Self.advance(&s, to: now)
            let calls = s.calls.reduce(0, +)
            let retries = s.retries.reduce(0, +)
            let allowed = Double(configuration.minPerSecond) * windowSeconds + configuration.ratio * Double(calls)
            guard Double(retries) + 1 <= allowed else { return false }
            s.retries[Int(now % Int64(Self.slotCount))] += 1
            return true
        }
    }

    /// Retries taken in the current window.
    public var retriesInWindow: Int {
        let index = slotIndex()
        return slots.withLock { s in
            Self.advance(&s, to: max(index, s.current))
            return s.retries.reduce(0, +)
        }
    }
}
