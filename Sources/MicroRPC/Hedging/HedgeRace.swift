import MicroCore
import Synchronization

/// Whether some attempt of a hedged call answered: an attempt that ends cancelled while it is set lost the race
/// (superseded); one that ends cancelled while it is not was cancelled by the caller.
final class HedgeAnswered: Sendable {
    let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// The state of a hedged call's fast path (see `Client.hedgedAttempts`): the first attempt runs on the caller's
/// task; when the hedge delay passes first, the timer's action picks another node and starts a hedge in a task of
/// its own. Whoever answers first wins: the caller's attempt is cancelled through ``firstCancellation``, hedges
/// through their tasks.
///
/// Thread-safe: the caller's task, the timer (on `BackgroundExecutor`) and the hedges' tasks meet here. The
/// selector's `Next` lives here too, so that the timer can pick while the caller's task waits in its attempt.
final class HedgeRace: @unchecked Sendable {
    struct State {
        /// The call's node iterator: used under this lock only (by the timer, or by the caller's task).
        var next: Next
        var sent: Int
        var hedges = 0
        var hedgesRunning = 0
        /// The caller's own attempt ended: no more hedges from the timer.
        var firstEnded = false
        /// The call is over (answered, or moving to the retry path): no more hedges, and new ones are cancelled.
        var finished = false
        /// A hedge's answer that came first.
        var winner: Response?
        var lastError: RPCError?
        var hedgeTasks: [Task<Void, Never>] = []
        var timer: HedgeTimer?
        /// The caller's task, waiting for hedges after its own attempt failed.
        var waiter: UnsafeContinuation<Void, Never>?
    }

    /// What the caller's task does once its own attempt ended.
    enum FirstOutcome {
        case answered(Response)
        case waitForHedges
        case failed(RPCError)
    }

    /// Guarded by its mutex.
    let state: Mutex<State>
    let answered = HedgeAnswered()
    let firstCancellation = CallCancellation()

    init(next: sending Next, sent: Int) {
        state = Mutex(State(next: next, sent: sent))
    }

    /// The caller's attempt ended with `result`.
    func firstEnded(_ result: Result<Response, RPCError>) -> FirstOutcome {
        let (outcome, cancel): (FirstOutcome, [Task<Void, Never>]) = state.withLock { s in
            s.firstEnded = true
            if let winner = s.winner {
                s.finished = true
                return (.answered(winner), [])
            }
            switch result {
            case .success(let response):
                s.finished = true
                answered.set()
                defer { s.hedgeTasks = [] }
                return (.answered(response), s.hedgeTasks)
            case .failure(let error):
                s.lastError = error
                if s.hedgesRunning > 0 { return (.waitForHedges, []) }
                s.finished = true
                return (.failed(error), [])
            }
        }
        for task in cancel { task.cancel() }
        return outcome
    }

    /// After the caller's attempt failed: waits until a hedge ends; then the answer, or the last error once no
    /// hedge runs. Cancelling the caller's task cancels the hedges (which then end).
    nonisolated(nonsending) func waitForHedges() async -> FirstOutcome {
        while true {
            let now: FirstOutcome? = state.withLock { s in
                if let winner = s.winner {
                    s.finished = true
                    return .answered(winner)
                }
                if s.hedgesRunning == 0 {
                    s.finished = true
                    return .failed(s.lastError ?? RPCError(.internalError, "hedged call ended without an outcome"))
                }
                return nil
            }
            if let now { return now }
            await withTaskCancellationHandler {
                await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                    let ready = state.withLock { s -> Bool in
                        if s.winner != nil || s.hedgesRunning == 0 { return true }
                        s.waiter = c
                        return false
                    }
                    if ready { c.resume() }
                }
            } onCancel: {
                cancelHedges()
            }
        }
    }

    /// A hedge ended with `result`.
    func hedgeEnded(_ result: Result<Response, RPCError>) {
        let (waiter, cancelFirst, cancel): (UnsafeContinuation<Void, Never>?, Bool, [Task<Void, Never>]) = state.withLock { s in
            s.hedgesRunning -= 1
            var cancelFirst = false
            var cancel: [Task<Void, Never>] = []
            switch result {
            case .success(let response):
                if s.winner == nil && !s.finished {
                    s.winner = response
                    answered.set()
                    cancelFirst = !s.firstEnded
                    cancel = s.hedgeTasks
                    s.hedgeTasks = []
                }
            case .failure(let error):
                if !s.finished { s.lastError = error }
            }
            defer { s.waiter = nil }
            return (s.waiter, cancelFirst, cancel)
        }
        if cancelFirst { firstCancellation.cancel() }
        for task in cancel { task.cancel() }  // the winner's own task is done: cancelling it does nothing
        waiter?.resume()
    }

    /// Cancels the running hedges (the caller gave up).
    func cancelHedges() {
        let tasks = state.withLock { s in
            defer { s.hedgeTasks = [] }
            return s.hedgeTasks
        }
        for task in tasks { task.cancel() }
    }

    /// Ends the fast path: stops the timer; hedges started from now on are cancelled at once.
    func finish() {
        let timer = state.withLock { s in
            s.finished = true
            defer { s.timer = nil }
            return s.timer
        }
        timer?.cancel()
    }
}

/// A hedge delay's timer: an alarm on the caller's event loop when it runs on one of the transport's (no thread
/// hop; the action runs on that loop), else a timer action on ``BackgroundExecutor``.
enum HedgeTimer: Sendable {
    case alarm(any TransportAlarm)
    case background(BackgroundExecutor.Timer)

    static func start(_ transport: any ClientTransport, at deadline: Timestamp, _ action: @escaping @Sendable () -> Void) -> HedgeTimer {
        if let alarm = transport.scheduleAlarm(at: deadline, action) { return .alarm(alarm) }
        return .background(BackgroundExecutor.shared.schedule(at: deadline, action))
    }

    func cancel() {
        switch self {
        case .alarm(let alarm): alarm.cancel()
        case .background(let timer): BackgroundExecutor.shared.cancel(timer)
        }
    }
}
