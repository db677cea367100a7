import Synchronization

/// Counts changes and lets tasks wait for the next one, each until its deadline: how a ``Next`` waits for a node
/// to appear (wait-for-ready).
///
/// Read ``version`` before looking at the state it guards; when what you found is not enough, wait with
/// ``wait(after:until:)``, which returns at once if a change came in between, so no change is missed. The
/// deadline is kept by ``BackgroundExecutor``'s timer (not the shared pool's), and a cancelled task stops waiting
/// at once. Thread-safe (one mutex); ``signal()`` without waiters costs one lock.
public final class ChangeSignal: Sendable {
    private struct State: ~Copyable {
        var version: UInt64 = 0
        var waiters: [OneShot] = []
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())

    public init() {}

    /// The number of changes signalled so far.
    public var version: UInt64 { state.withLock { $0.version } }

    /// Counts a change and wakes every waiter.
    public func signal() {
        let waiters = state.withLock { s -> [OneShot] in
            s.version &+= 1
            guard !s.waiters.isEmpty else { return [] }
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.fire() }
    }

    /// Suspends until the version moves past `seen`, `deadline` passes, or the task is cancelled, whichever
    /// comes first (at once when one already has). Says nothing of which: look at the state again.
    public func wait(after seen: UInt64, until deadline: Timestamp) async {
        let shot = OneShot()
        let waiting = state.withLock { s -> Bool in
            guard s.version == seen else { return false }
            s.waiters.append(shot)
            return true
        }
        guard waiting else { return }
        let timer = BackgroundExecutor.shared.schedule(at: deadline) { shot.fire() }
        await withTaskCancellationHandler {
            await shot.wait()
        } onCancel: {
            shot.fire()
        }
        BackgroundExecutor.shared.cancel(timer)
        state.withLock { s in
            if let i = s.waiters.firstIndex(where: { $0 === shot }) { s.waiters.remove(at: i) }
        }
    }
}
