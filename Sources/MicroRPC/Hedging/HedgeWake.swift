import MicroCore
import Synchronization

/// Wakes a hedged call's task when one of its attempts ended or its hedge delay passed, whichever comes first: the
/// delay is a timer on ``BackgroundExecutor`` (an action, not a task), so a call answered before its delay costs
/// no task for the timer and no thread hop.
///
/// One waiter at a time (the call's task). Thread-safe.
final class HedgeWake: Sendable {
    enum Reason: Sendable {
        case timer
        case attemptEnded
    }

    private struct State {
        var waiter: UnsafeContinuation<Reason, Never>?
        var timerFired = false
        /// Attempts that ended while nobody waited, not yet taken by ``wait()`` or ``tookAttempt()``.
        var endedAttempts = 0
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())
    /// Set by the call's task before it cancels the other attempts because one answered: a loser that sees it was
    /// superseded, one that does not was cancelled by the caller.
    let answered = Atomic<Bool>(false)

    /// Suspends until an attempt ended or the timer fired (at once if either happened since the last wait).
    func wait() async -> Reason {
        await withUnsafeContinuation { (c: UnsafeContinuation<Reason, Never>) in
            let now: Reason? = state.withLock { s in
                if s.endedAttempts > 0 {
                    s.endedAttempts -= 1
                    return .attemptEnded
                }
                if s.timerFired {
                    s.timerFired = false
                    return .timer
                }
                s.waiter = c
                return nil
            }
            if let now { c.resume(returning: now) }
        }
    }

    /// An ended attempt's result was taken without waiting here.
    func tookAttempt() {
        state.withLock { s in if s.endedAttempts > 0 { s.endedAttempts -= 1 } }
    }

    func fire(_ reason: Reason) {
        let waiter = state.withLock { s -> UnsafeContinuation<Reason, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            switch reason {
            case .timer: s.timerFired = true
            case .attemptEnded: s.endedAttempts += 1
            }
            return nil
        }
        waiter?.resume(returning: reason)
    }
}
