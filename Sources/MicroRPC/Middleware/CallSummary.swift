import Synchronization

/// What happened inside one logical call, for a middleware that wants to report it (a log line, a span). Opt-in:
/// a middleware sets ``ClientCall/summary`` to a new summary before it hands the call on, and reads it when the
/// call has ended; the client fills it as the attempts go. Costs nothing when no middleware asks.
///
/// Thread-safe (hedged attempts run at once).
public final class CallSummary: Sendable {
    private struct State {
        var attempts = 0
        var hedges = 0
        var lastNode: String?
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())

    public init() {}

    /// Attempts sent (first try, retries and hedges; not the nodes a breaker kept the call off).
    public var attempts: Int { state.withLock { $0.attempts } }
    /// How many of them were hedges.
    public var hedges: Int { state.withLock { $0.hedges } }
    /// The node of the latest attempt (its id, or its address when the call named one).
    public var lastNode: String? { state.withLock { $0.lastNode } }

    func attempted(_ node: String, hedge: Bool) {
        state.withLock {
            $0.attempts += 1
            if hedge { $0.hedges += 1 }
            $0.lastNode = node
        }
    }
}
