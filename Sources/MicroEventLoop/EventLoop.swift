internal import CLibUV
import Dispatch
import Glibc
import Synchronization

/// One libuv loop running on its own thread.
///
/// Everything that touches libuv handles of this loop runs on the loop's thread ("loop-confined").
/// Other threads reach the loop only through ``execute(_:)`` (a locked queue plus one `uv_async_send`
/// per batch; wake-ups coalesce) or by running Swift tasks on it as a `TaskExecutor`.
///
/// Work submitted from the loop's own thread goes to a loop-local queue that is drained before the loop
/// polls again, without a lock and without a system call.
///
/// Not promised: fairness between loops, or any order between work submitted from different threads.
public final class EventLoop: @unchecked Sendable {
    /// Work queued for the loop. A closure, or a Swift job when the loop acts as a `TaskExecutor`.
    /// `@unchecked`: the non-Sendable closures come only from ``executeOnLoop(_:)`` and stay in the
    /// loop-local queue; only Sendable work crosses threads.
    enum Work: @unchecked Sendable {
        case closure(() -> Void)
        case job(UnownedJob)
    }

    struct Inbox: ~Copyable {
        var work: [Work] = []
        var accepting = true
    }

    /// The position of this loop in its group.
    public let index: Int

    // Set once before the thread starts; the pointers never change.
    let uvLoop: UnsafeMutablePointer<uv_loop_t>
    private let wakeup: UnsafeMutablePointer<uv_async_t>
    private let prepare: UnsafeMutablePointer<uv_prepare_t>
    private let check: UnsafeMutablePointer<uv_check_t>
    private let idle: UnsafeMutablePointer<uv_idle_t>

    /// Work from other threads. Guarded by its own mutex.
    private let inbox = Mutex(Inbox())

    // Loop-confined state below: read and written only on the loop's thread. The queues are
    // `@exclusivity(unchecked)`: with one thread and no re-entrant mutation, access tracking would only cost.
    @exclusivity(unchecked) private var local: [Work] = []
    @exclusivity(unchecked) private var spare: [Work] = []
    @exclusivity(unchecked) private var inboxBatch: [Work] = []
    @exclusivity(unchecked) private var flushQueue: [any LoopFlushable] = []
    @exclusivity(unchecked) private var flushSpare: [any LoopFlushable] = []
    private var idleActive = false
    private var closing = false
    /// The shared read buffer: libuv reads every connection of this loop into it (no per-connection buffer).
    let readBuffer: UnsafeMutableRawBufferPointer
    /// Scratch space for connection transforms (TLS): plaintext out of the decoder, ciphertext out of the encoder.
    /// Allocated on first use; loop-confined.
    private var scratch: (read: UnsafeMutableRawBufferPointer, write: UnsafeMutableRawBufferPointer)?
    /// Per-loop singletons of higher layers (see ``loopLocal(_:create:)``). Loop-confined.
    private var locals: [ObjectIdentifier: AnyObject] = [:]
    /// Reusable outbound buffers, so a connection holds no write buffer while idle.
    @exclusivity(unchecked) var bufferPool: [UnsafeMutableRawBufferPointer] = []
    /// Reusable buffers above the standard size (up to `maxLargeBufferSize`), at most `maxLargeBuffers`.
    @exclusivity(unchecked) var largeBufferPool: [UnsafeMutableRawBufferPointer] = []

    /// Written once by the loop thread before `init` returns (the semaphore orders it).
    private var thread: pthread_t = pthread_t()
    private let stopped = DispatchSemaphore(value: 0)

    /// Size of the per-loop read buffer.
    public static let readBufferSize = 64 * 1024
    /// Outbound buffers up to this size go back to the pool after a flush; larger ones are freed.
    static let pooledBufferSize = 64 * 1024
    static let maxPooledBuffers = 256
    static let maxLargeBuffers = 16
    static let maxLargeBufferSize = 4 << 20

    /// Creates a loop and starts its thread.
    public init(index: Int = 0) {
        self.index = index
        micro_ignore_sigpipe()
        uvLoop = .allocate(capacity: 1)
        precondition(uv_loop_init(uvLoop) == 0, "uv_loop_init failed")
        wakeup = .allocate(capacity: 1)
        prepare = .allocate(capacity: 1)
        check = .allocate(capacity: 1)
        idle = .allocate(capacity: 1)
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        let me = Unmanaged.passUnretained(self).toOpaque()
        uv_loop_set_data(uvLoop, me)  // how a connection finds its loop (``of(_:)``)
        uv_async_init(uvLoop, wakeup) { handle in
            EventLoop.from(handle!).drainInbox()
        }
        uv_handle_set_data(UVHandle.cast(wakeup), me)
        uv_prepare_init(uvLoop, prepare)
        uv_handle_set_data(UVHandle.cast(prepare), me)
        uv_prepare_start(prepare) { handle in EventLoop.from(handle!).turnEnd() }
        uv_unref(UVHandle.cast(prepare))
        uv_check_init(uvLoop, check)
        uv_handle_set_data(UVHandle.cast(check), me)
        uv_check_start(check) { handle in EventLoop.from(handle!).turnEnd() }
        uv_unref(UVHandle.cast(check))
        uv_idle_init(uvLoop, idle)
        uv_handle_set_data(UVHandle.cast(idle), me)

        let started = DispatchSemaphore(value: 0)
        let box = Unmanaged.passRetained(ThreadStart(loop: self, started: started)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { arg in
            let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
            start.loop.threadMain(started: start.started)
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        started.wait()
    }

    deinit {
        uvLoop.deallocate()
        wakeup.deallocate()
        prepare.deallocate()
        check.deallocate()
        idle.deallocate()
        readBuffer.deallocate()
        if let scratch {
            scratch.read.deallocate()
            scratch.write.deallocate()
        }
        for b in bufferPool { b.deallocate() }
        for b in largeBufferPool { b.deallocate() }
    }

    /// True when called on this loop's thread.
    public var inEventLoop: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Crashes unless called on this loop's thread: guards loop-confined APIs.
    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inEventLoop, "must be called on the event loop's thread", file: file, line: line)
    }

    /// Runs `body` on the loop's thread, soon. Safe from any thread.
    ///
    /// From the loop's own thread the work is queued (not run inline) and runs before the loop next
    /// blocks. Returns `false` (and never runs `body`) once the loop is shutting down.
    @discardableResult
    public func execute(_ body: @escaping @Sendable () -> Void) -> Bool {
        enqueue(.closure(body))
    }

    /// Loop-confined variant of ``execute(_:)`` for non-Sendable work queued from the loop's own thread.
    @discardableResult
    public func executeOnLoop(_ body: @escaping () -> Void) -> Bool {
        preconditionInEventLoop()
        if closing { return false }
        local.append(.closure(body))
        ensureNoBlock()
        return true
    }

    /// Runs `body` on the loop and returns its result to the caller.
    public func submit<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
            let accepted = execute {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
            if !accepted { cont.resume(throwing: EventLoopError.shutdown) }
        }
    }

    @discardableResult
    func enqueue(_ work: Work) -> Bool {
        if inEventLoop {
            if closing { return false }
            local.append(work)
            ensureNoBlock()
            return true
        }
        // The wake-up is sent while the lock is held: the loop takes the inbox under the same lock, so it cannot
        // run beginClose (and close the async handle and the loop) while a send is still in flight.
        return inbox.withLock { inbox in
            guard inbox.accepting else { return false }
            let wasEmpty = inbox.work.isEmpty
            inbox.work.append(work)
            if wasEmpty { uv_async_send(wakeup) }
            return true
        }
    }

    /// Keeps the loop from blocking in poll while local work is pending.
    private func ensureNoBlock() {
        if !idleActive {
            idleActive = true
            uv_idle_start(idle) { _ in }
        }
    }

    /// Queues `resource` to be flushed once at the end of this loop turn (before the loop blocks again), after
    /// the work and jobs queued so far ran. Call on the loop; schedule again for another turn.
    public func scheduleFlush(_ resource: any LoopFlushable) {
        flushQueue.append(resource)
        ensureNoBlock()
    }

    private func drainInbox() {
        // The inbox takes the empty batch array back, so neither side allocates in steady state.
        inbox.withLock { swap(&inboxBatch, &$0.work) }
        for w in inboxBatch { run(w) }
        inboxBatch.removeAll(keepingCapacity: true)
        turnEnd()
    }

    @inline(__always)
    private func run(_ work: Work) {
        switch work {
        case .closure(let body): body()
        case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Runs queued local work, then flushes every connection that has output. Called from the prepare
    /// and check phases, so it happens once before and once after each poll.
    private func turnEnd() {
        var rounds = 0
        while !local.isEmpty || !flushQueue.isEmpty {
            rounds += 1
            while !local.isEmpty {
                swap(&local, &spare)
                for w in spare { run(w) }
                spare.removeAll(keepingCapacity: true)
            }
            if !flushQueue.isEmpty {
                swap(&flushQueue, &flushSpare)
                for r in flushSpare { r.flushNow() }
                flushSpare.removeAll(keepingCapacity: true)
            }
            if rounds > 64 { break }  // let I/O in; the idle handle keeps the loop from blocking
        }
        if idleActive && local.isEmpty && flushQueue.isEmpty {
            idleActive = false
            uv_idle_stop(idle)
        }
    }

    private func threadMain(started: DispatchSemaphore) {
        thread = pthread_self()
        started.signal()
        uv_run(uvLoop, UV_RUN_DEFAULT)
        // Every handle is closed now; the loop must close clean.
        let rc = uv_loop_close(uvLoop)
        closeResult.withLock { $0 = rc }
        stopped.signal()
    }

    private let closeResult = Mutex<Int32>(Int32.min)

    /// Stops accepting work, closes every handle of the loop (connections, listeners, timers), waits for the
    /// thread to end and returns `uv_loop_close`'s result (0 when the loop closed clean).
    ///
    /// Must not be called on the loop's own thread.
    @discardableResult
    public func shutdownGracefully() -> Int32 {
        // A loop already closed returns its result at once. (Checked before `inEventLoop`: once the loop's thread
        // has been joined, a new thread may get the same pthread_t, and would look like the loop's own.)
        let done = closeResult.withLock { $0 }
        if done != Int32.min { return done }
        precondition(!inEventLoop, "shutdownGracefully() would deadlock on the loop's own thread")
        let first: Bool = inbox.withLock { inbox in
            guard inbox.accepting else { return false }
            inbox.accepting = false
            inbox.work.append(.closure { [self] in beginClose() })
            uv_async_send(wakeup)
            return true
        }
        if first {
            stopped.wait()
            pthread_join(thread, nil)
        } else {
            // Another caller is shutting the loop down: wait for it to finish.
            while closeResult.withLock({ $0 }) == Int32.min { usleep(1000) }
        }
        return closeResult.withLock { $0 }
    }

    private func beginClose() {
        if closing { return }
        // Work that was queued before the shutdown still runs.
        turnEnd()
        closing = true
        // Every open handle whose data is one of our resources (connections, listeners, timers) closes through
        // its owner, so that the owner hears of it. No registry is kept: the loop's handle list is the registry.
        var resources: [any LoopResource] = []
        withUnsafeMutablePointer(to: &resources) { list in
            uv_walk(uvLoop, { handle, arg in
                guard let handle, uv_is_closing(handle) == 0, let data = uv_handle_get_data(handle) else { return }
                if let resource = Unmanaged<AnyObject>.fromOpaque(data).takeUnretainedValue() as? any LoopResource {
                    arg!.assumingMemoryBound(to: [any LoopResource].self).pointee.append(resource)
                }
            }, list)
        }
        for r in resources { r.closeForShutdown() }
        turnEnd()
        for h in [UVHandle.cast(wakeup), UVHandle.cast(prepare), UVHandle.cast(check), UVHandle.cast(idle)] {
            uv_close(h, nil)
        }
        // Anything else still open (a handle an owner forgot) is closed too, so that the loop ends.
        uv_walk(uvLoop, { handle, _ in
            if let handle, uv_is_closing(handle) == 0 { uv_close(handle, nil) }
        }, nil)
    }

    /// The result of `uv_loop_close` after shutdown (`Int32.min` while running).
    public var loopCloseResult: Int32 { closeResult.withLock { $0 } }

    /// Whether the loop has begun shutting down. Loop-confined.
    var isClosing: Bool { closing }


    /// A per-loop singleton of type `T`, made by `create` on first use (e.g. one housekeeping timer for all
    /// connections of a kind). Loop-confined; it lives as long as the loop.
    public func loopLocal<T: AnyObject>(_ type: T.Type, create: () -> T) -> T {
        let key = ObjectIdentifier(type)
        if let existing = locals[key] { return existing as! T }
        let made = create()
        locals[key] = made
        return made
    }

    /// Asks the allocator to return the free pages inside the heap to the system (glibc's `malloc_trim`). Freed
    /// blocks stay resident otherwise, unless they are at the top of the heap. It walks every arena, taking each
    /// one's lock: call it rarely, when a burst of short-lived allocations is over. Any thread.
    public static func returnFreeMemoryToSystem() {
        _ = micro_malloc_trim()
    }

    /// The loop's cached clock in milliseconds (`uv_now`). Loop-confined.
    public var nowMilliseconds: UInt64 { uv_now(uvLoop) }

    // MARK: buffer pool (loop-confined)

    func transformScratch() -> (read: UnsafeMutableRawBufferPointer, write: UnsafeMutableRawBufferPointer) {
        if let scratch { return scratch }
        let s = (read: UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferSize, alignment: 16),
                 write: UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferSize, alignment: 16))
        scratch = s
        return s
    }

    func takeBuffer(minimumCapacity: Int) -> UnsafeMutableRawBufferPointer {
        if minimumCapacity <= Self.pooledBufferSize {
            if let b = bufferPool.popLast() { return b }
            return .allocate(byteCount: Self.pooledBufferSize, alignment: 16)
        }
        // Large buffers (bulk frames) are reused too: allocating them anew each time costs page faults.
        if let i = largeBufferPool.firstIndex(where: { $0.count >= minimumCapacity }) {
            largeBufferPool.swapAt(i, largeBufferPool.count - 1)
            return largeBufferPool.removeLast()
        }
        var size = Self.pooledBufferSize * 2
        while size < minimumCapacity { size *= 2 }
        return .allocate(byteCount: size, alignment: 16)
    }

    func returnBuffer(_ buffer: UnsafeMutableRawBufferPointer) {
        if buffer.count == Self.pooledBufferSize {
            if bufferPool.count < Self.maxPooledBuffers { bufferPool.append(buffer) } else { buffer.deallocate() }
        } else if buffer.count <= Self.maxLargeBufferSize && largeBufferPool.count < Self.maxLargeBuffers {
            largeBufferPool.append(buffer)
        } else {
            buffer.deallocate()
        }
    }

    /// The loop that owns `uvLoop` (its data pointer, set in `init`). The caller keeps the loop alive.
    @inline(__always)
    static func of(_ uvLoop: UnsafeMutablePointer<uv_loop_t>) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(uvLoop.pointee.data!).takeUnretainedValue()
    }

    private static func from<H>(_ handle: UnsafeMutablePointer<H>) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(uv_handle_get_data(UVHandle.cast(handle))!).takeUnretainedValue()
    }
}

private final class ThreadStart {
    let loop: EventLoop
    let started: DispatchSemaphore
    init(loop: EventLoop, started: DispatchSemaphore) {
        self.loop = loop
        self.started = started
    }
}

extension EventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        if !enqueue(.job(unowned)) {
            // The loop is gone: run the job anyway on this thread, so that no task is lost.
            unowned.runSynchronously(on: globalConcurrentExecutor.asUnownedTaskExecutor())
        }
    }
}

/// Something that flushes its output once per loop turn.
/// Something that wants to act once at the end of a loop turn (``EventLoop/scheduleFlush(_:)``): a connection
/// writing what the turn produced, a pool checking for work that waits.
public protocol LoopFlushable: AnyObject {
    func flushNow()
}

/// A loop-confined object owning a libuv handle (the handle's data points to it, retained) that must be
/// closed when its loop shuts down.
protocol LoopResource: AnyObject {
    func closeForShutdown()
}

/// Errors of the event-loop layer.
public enum EventLoopError: Error, Equatable, Sendable {
    /// The loop is shut down or shutting down.
    case shutdown
}
