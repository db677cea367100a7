import Synchronization

/// Cancels one unary call from outside the task that awaits it: a hedged call runs its first attempt on the
/// caller's own task (no task of its own), and when a hedge answers first, the first attempt is cancelled through
/// this (cancelling the caller's task would cancel the whole call).
///
/// The transport ``arm(_:)``s it with the action that cancels its call while the call is in flight, and
/// ``disarm()``s it when the call ended. ``cancel()`` runs the armed action once; cancelled before it was armed,
/// ``arm(_:)`` refuses, so the transport ends the call at once. Thread-safe.
///
/// Not promised: that the call ends with `cancelled` (an answer may already be on its way), or when the action runs
/// relative to other work of the transport (it usually hops to the connection's loop).
public final class CallCancellation: Sendable {
    private enum State {
        case idle
        case armed(@Sendable () -> Void)
        case cancelled
    }

    /// Guarded by its mutex.
    private let state = Mutex(State.idle)

    public init() {}

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool {
        state.withLock { if case .cancelled = $0 { true } else { false } }
    }

    /// Cancels the call: runs the armed action (outside the lock), or marks it so that ``arm(_:)`` refuses.
    public func cancel() {
        let action = state.withLock { s -> (@Sendable () -> Void)? in
            defer { s = .cancelled }
            if case .armed(let action) = s { return action }
            return nil
        }
        action?()
    }

    /// Installs the action that cancels the call in flight; false (and not installed) when already cancelled.
    public func arm(_ action: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { s in
            if case .cancelled = s { return false }
            s = .armed(action)
            return true
        }
    }

    /// The call ended: the action is dropped (a later ``cancel()`` only marks).
    public func disarm() {
        state.withLock { s in if case .armed = s { s = .idle } }
    }
}
