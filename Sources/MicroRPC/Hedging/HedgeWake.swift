import MicroCore
import Synchronization

/// Wakes a hedged call's task in its retry path (`Client.hedgedRetries`) when one of its attempts ended (with the attempt's result) or its hedge delay
/// passed. The attempts hand their results here rather than to their task group, so that the call's task waits
/// in one place and is resumed once per event: waiting on this and then on the group cost a second suspension
/// for most calls. The delay is a timer action on ``BackgroundExecutor``, not a task.
///
/// One waiter at a time (the call's task). Thread-safe.
final class HedgeWake: Sendable {
    enum Event: Sendable {
        case timer
        case ended(Result<Response, RPCError>)
    }

    private struct State: ~Copyable {
        var waiter: UnsafeContinuation<Event, Never>?
        var timerFired = false
        /// Results that arrived while nobody waited, oldest first: the first inline (no allocation for the usual
        /// case), more in `later`.
        var first: Result<Response, RPCError>?
        var later: [Result<Response, RPCError>] = []

        mutating func takeEnded() -> Result<Response, RPCError>? {
            guard let result = first else { return nil }
            first = later.isEmpty ? nil : later.removeFirst()
            return result
        }
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())

    /// Suspends until an attempt ended or the timer fired (at once if either happened since the last wait).
    /// Ended attempts come first, in the order they ended.
    func wait() async -> Event {
        await withUnsafeContinuation { (c: UnsafeContinuation<Event, Never>) in
            let now: Event? = state.withLock { s in
                if let result = s.takeEnded() { return .ended(result) }
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

    /// The hedge delay passed.
    func timerFired() {
        let waiter = state.withLock { s -> UnsafeContinuation<Event, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.timerFired = true
            return nil
        }
        waiter?.resume(returning: .timer)
    }

    /// An attempt ended with `result`.
    func ended(_ result: Result<Response, RPCError>) {
        let waiter = state.withLock { s -> UnsafeContinuation<Event, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            if s.first == nil { s.first = result } else { s.later.append(result) }
            return nil
        }
        waiter?.resume(returning: .ended(result))
    }
}
