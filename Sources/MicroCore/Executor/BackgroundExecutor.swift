import Dispatch
import Synchronization
#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// A `TaskExecutor` with one thread of its own, and timers on that thread: where the library's background work
/// runs (registry watch consumers and polls, lease keep-alives, registration renewals, the deadlines of calls
/// waiting for a node), so that it goes on while the program's own tasks hold every thread of Swift's shared
/// pool.
///
/// Run work on it with `Task(executorPreference: BackgroundExecutor.shared) { ... }`, and sleep with
/// ``sleep(until:)``, not `Task.sleep`: the standard sleep wakes its task through the shared pool, so a task
/// sleeping that way waits for a free thread there even when it prefers this executor.
///
/// Jobs run in the order they were enqueued. The thread runs for the life of the process. Not promised: that the
/// work is quick; everything on it shares one thread, so it must not block for long (file and socket I/O of the
/// registries is short or goes through an event loop).
public final class BackgroundExecutor: TaskExecutor, @unchecked Sendable {
    /// The process-wide instance, started on first use.
    public static let shared = BackgroundExecutor()

    /// A scheduled action. Guarded by the executor's mutex.
    package final class Timer: @unchecked Sendable {
        let deadline: Timestamp
        /// Nil once fired or cancelled.
        var action: (@Sendable () -> Void)?
        init(deadline: Timestamp, action: @escaping @Sendable () -> Void) {
            self.deadline = deadline
            self.action = action
        }
    }

    struct State: ~Copyable {
        var jobs: [UnownedJob] = []
        /// Timers by deadline (a binary min-heap); cancelled ones stay until they reach the top or a compaction.
        var timers: [Timer] = []
        var cancelledTimers = 0
        /// Whether the thread waits on `wakeup` (an enqueue then signals it).
        var sleeping = false
    }

    /// Guarded by its own mutex.
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)

    init() {
        let context = Unmanaged.passRetained(StartContext(executor: self)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<StartContext>.fromOpaque(raw!).takeRetainedValue()
            start.executor.run()
            return nil
        }, context)
        precondition(rc == 0, "cannot start the background executor's thread (pthread_create: \(rc))")
        pthread_detach(thread)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wake = state.withLock { s -> Bool in
            s.jobs.append(job)
            defer { s.sleeping = false }
            return s.sleeping
        }
        if wake { wakeup.signal() }
    }

    /// Suspends the current task until `deadline`, on this executor's timer (whatever executor the task runs on).
    /// Throws `CancellationError` when the task is cancelled first.
    public func sleep(until deadline: Timestamp) async throws {
        let signal = OneShot()
        let timer = schedule(at: deadline) { signal.fire() }
        await withTaskCancellationHandler {
            await signal.wait()
        } onCancel: {
            signal.fire()
        }
        cancel(timer)
        try Task.checkCancellation()
    }

    /// ``sleep(until:)`` for a duration from now.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: Timestamp.now.advanced(by: duration))
    }

    /// Runs `action` on this executor's thread at `deadline` (at once if it passed), unless cancelled first.
    /// The action must be short and must not block.
    package func schedule(at deadline: Timestamp, _ action: @escaping @Sendable () -> Void) -> Timer {
        let timer = Timer(deadline: deadline, action: action)
        let wake = state.withLock { s -> Bool in
            s.timers.append(timer)
            Self.siftUp(&s.timers, s.timers.count - 1)
            // The thread must recompute how long to wait only if this timer is now the first.
            guard s.sleeping, s.timers[0] === timer else { return false }
            s.sleeping = false
            return true
        }
        if wake { wakeup.signal() }
        return timer
    }

    /// Cancels `timer` if it has not fired. Idempotent.
    package func cancel(_ timer: Timer) {
        state.withLock { s in
            guard timer.action != nil else { return }
            timer.action = nil
            s.cancelledTimers += 1
            // Keep the heap from filling with dead timers of long deadlines.
            if s.cancelledTimers > 64 && s.cancelledTimers * 2 > s.timers.count {
                s.timers.removeAll { $0.action == nil }
                for i in stride(from: s.timers.count / 2 - 1, through: 0, by: -1) { Self.siftDown(&s.timers, i) }
                s.cancelledTimers = 0
            }
        }
    }

    // MARK: - The thread

    private func run() {
        var batch: [UnownedJob] = []
        var due: [@Sendable () -> Void] = []
        while true {
            let now = Timestamp.now
            var waitNanoseconds: Int64 = -1
            state.withLock { s in
                swap(&batch, &s.jobs)
                while let first = s.timers.first, first.deadline <= now || first.action == nil {
                    if let action = first.action {
                        due.append(action)
                        first.action = nil
                    } else {
                        s.cancelledTimers = max(0, s.cancelledTimers - 1)
                    }
                    Self.popFirst(&s.timers)
                }
                if batch.isEmpty && due.isEmpty {
                    s.sleeping = true
                    if let first = s.timers.first { waitNanoseconds = now.nanoseconds(to: first.deadline) }
                }
            }
            for action in due { action() }
            due.removeAll(keepingCapacity: true)
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
            if !batch.isEmpty {
                batch.removeAll(keepingCapacity: true)
                continue
            }
            if waitNanoseconds < 0 {
                // Nothing due and no timer: wait for an enqueue, unless one came after the check above.
                if state.withLock({ $0.sleeping }) { wakeup.wait() }
            } else if waitNanoseconds > 0 {
                _ = wakeup.wait(timeout: .now() + .nanoseconds(Int(min(waitNanoseconds, Int64(Int.max)))))
            }
            state.withLock { $0.sleeping = false }
        }
    }

    // MARK: - Heap

    private static func siftUp(_ heap: inout [Timer], _ index: Int) {
        var i = index
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].deadline < heap[parent].deadline else { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private static func siftDown(_ heap: inout [Timer], _ index: Int) {
        var i = index
        while true {
            let left = 2 * i + 1, right = left + 1
            var smallest = i
            if left < heap.count && heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count && heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == i { return }
            heap.swapAt(i, smallest)
            i = smallest
        }
    }

    private static func popFirst(_ heap: inout [Timer]) {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(&heap, 0)
    }
}

private final class StartContext {
    let executor: BackgroundExecutor
    init(executor: BackgroundExecutor) { self.executor = executor }
}

/// One wake-up for one waiting task: whichever of its sources fires first resumes the task; later fires do
/// nothing, and a fire before the wait makes the wait return at once. Thread-safe (one mutex).
final class OneShot: Sendable {
    private enum State {
        case idle
        case waiting(UnsafeContinuation<Void, Never>)
        case fired
    }

    /// Guarded by its mutex.
    private let state = Mutex(State.idle)

    func wait() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            let resumeNow = state.withLock { s -> Bool in
                if case .fired = s { return true }
                s = .waiting(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    func fire() {
        let waiting = state.withLock { s -> UnsafeContinuation<Void, Never>? in
            defer { s = .fired }
            if case .waiting(let c) = s { return c }
            return nil
        }
        waiting?.resume()
    }
}
