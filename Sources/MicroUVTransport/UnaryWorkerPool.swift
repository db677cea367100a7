internal import MicroCore
internal import MicroFraming
internal import MicroEventLoop

/// Runs unary handlers on one loop with long-lived tasks, so that a call costs neither a task nor a task switch
/// of its own.
///
/// Calls of a read burst go into a queue, and one worker drains it: a handler that completes without suspending
/// returns straight to the worker, which takes the next call. A handler that suspends holds its worker; at the
/// end of the loop turn the pool sees calls still queued and starts another worker (an idle one, or a new task).
/// Workers that find nothing to do wait, on an allocation-free continuation, for the next burst.
///
/// A call is cancelled while queued (it is skipped) or while running (its worker's task is cancelled, its reply
/// dropped, and that worker ends after the handler returns: cancellation is sticky on a task).
///
/// Loop-confined: every field is used on the loop's thread only. `@exclusivity(unchecked)` on the hot fields:
/// one thread, no re-entrant mutation, so the runtime's access tracking (a thread-local lookup per access) would
/// only cost.
final class UnaryWorkerPool: LoopFlushable, @unchecked Sendable {
    struct Call: ~Copyable {
        let connection: MuxConnection
        let streamID: UInt32
        let handler: any UnaryHandler
        /// Boxed, so that ``run()`` moves it into the handler (a copyable field of a non-copyable value is copied
        /// out, at the cost of a retain and a release of each of its references).
        var request: MoveBox<UnaryRequest>
        /// The call's deadline (arrival + the head's budget), nil without one. Kept apart from the request: reading
        /// a field of the boxed request would copy the whole request out (a retain and release per reference).
        let deadline: Timestamp?
        var cancelled = false

        init(connection: MuxConnection, streamID: UInt32, handler: any UnaryHandler, head: consuming RequestHead,
             message: consuming [UInt8], peer: String, receivedAt: Timestamp, peerCertificateSubject: String? = nil) {
            self.connection = connection
            self.streamID = streamID
            self.handler = handler
            let budget = head.timeoutMicroseconds
            deadline = budget == 0 ? nil
                : receivedAt.advanced(byNanoseconds: budget >= UInt64(Int64.max / 1000) ? Int64.max : Int64(budget) * 1000)
            request = MoveBox(UnaryRequest(head: head, message: message, peer: peer, receivedAt: receivedAt,
                                           peerCertificateSubject: peerCertificateSubject))
        }

        /// Runs the handler with the request, which moves into it.
        consuming nonisolated(nonsending) func run() async -> UnaryReply {
            await handler.handle(request.take())
        }
    }

    unowned let loop: EventLoop
    /// The deadlines of this loop's running calls (and streams).
    let deadlines: ServerDeadlines
    /// Workers that started a call with a deadline in this loop turn: at its end, those still running it are
    /// suspended, and their call's deadline is watched.
    @exclusivity(unchecked) private var started: [UnaryWorker] = []
    /// Calls waiting for a worker, oldest first.
    @exclusivity(unchecked) private var queue = RingQueue<Call>()
    /// Workers waiting for calls.
    @exclusivity(unchecked) private var idle: [UnaryWorker] = []
    /// Every worker alive (for cancellation, which looks for the one running a call: rare, so a scan).
    @exclusivity(unchecked) private var workers: [UnaryWorker] = []
    /// Workers resumed or created that have not started draining yet: one is enough per burst.
    @exclusivity(unchecked) private var starting = 0
    @exclusivity(unchecked) private var flushScheduled = false
    /// Idle workers kept; a worker finding more idle ones ends.
    let maxIdle: Int
    private(set) var closed = false
    /// Workers alive (busy or idle).
    private(set) var liveWorkers = 0

    init(loop: EventLoop, maxIdle: Int = 1024) {
        self.loop = loop
        self.maxIdle = maxIdle
        deadlines = ServerDeadlines(loop: loop)
    }

    var queuedCount: Int { queue.count }

    /// Queues a call; a worker runs it in this loop turn.
    func dispatch(_ call: consuming Call) {
        queue.append(call)
        if starting == 0 { startWorker() }
        if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    private func startWorker() {
        starting += 1
        if let w = idle.popLast() {
            w.resume(true)
            return
        }
        let w = UnaryWorker()
        liveWorkers += 1
        workers.append(w)
        w.task = Task(executorPreference: loop) { await w.run(in: self) }
    }

    /// End of the loop turn: the jobs ran, so any worker still inside a handler is suspended. Calls still queued
    /// get another worker.
    func flushNow() {
        flushScheduled = false
        if !started.isEmpty { watchSuspended() }
        if queuedCount > 0 && starting == 0 && !closed {
            startWorker()
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    /// Watches the deadlines of the calls that started this turn and are still running (their handler suspended).
    private func watchSuspended() {
        // The clocks are read only when a handler did suspend (handlers that answer at once cost no clock read).
        var clocks: (now: Timestamp, loop: UInt64)?
        for w in started {
            w.listed = false
            if let deadline = w.callDeadline, w.isRunning(generation: w.generation) {
                let c = clocks ?? (Timestamp.now, loop.nowMilliseconds)
                clocks = c
                deadlines.watch(.unary(w, generation: w.generation), deadline: deadline, now: c.now, loopNow: c.loop)
            }
        }
        started.removeAll(keepingCapacity: true)
    }

    // MARK: for workers

    func workerStarted() { starting -= 1 }

    /// A worker started a call with a deadline: it is looked at when this loop turn ends.
    func noteStarted(_ worker: UnaryWorker) {
        started.append(worker)
        if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    /// The next call that was not cancelled, or nil. Cancelled ones are let go (their handler never sees them).
    func nextCall() -> Call? {
        while let call = queue.popFirst() {
            if !call.cancelled { return call }
        }
        return nil
    }

    /// Whether a worker that drained the queue should wait for more (rather than end).
    func shouldPark() -> Bool { !closed && idle.count < maxIdle && !Task.isCancelled }

    func park(_ worker: UnaryWorker) { idle.append(worker) }

    func workerEnded(_ worker: UnaryWorker) {
        liveWorkers -= 1
        if let i = workers.firstIndex(where: { $0 === worker }) { workers.remove(at: i) }
    }

    // MARK: cancellation

    /// Cancels the call `streamID` of `connection`, queued or running. Returns false when it is not here (it
    /// already finished).
    func cancel(_ connection: MuxConnection, _ streamID: UInt32) -> Bool {
        var found = false
        queue.updateEach { call in
            guard call.streamID == streamID, call.connection === connection, !call.cancelled else { return false }
            call.cancelled = true
            found = true
            return true
        }
        if found { return true }
        for w in workers where w.streamID == streamID && w.connection === connection && !w.callCancelled {
            w.cancelCall()
            return true
        }
        return false
    }

    /// Cancels every call of `connection` (it closed); returns how many.
    func cancelAll(of connection: MuxConnection) -> Int {
        var n = 0
        queue.updateEach { call in
            if call.connection === connection && !call.cancelled {
                call.cancelled = true
                n += 1
            }
            return false
        }
        for w in workers where w.connection === connection && !w.callCancelled {
            w.cancelCall()
            n += 1
        }
        return n
    }

    /// Ends every idle worker (the server stops). Busy ones end when their handler returns.
    func close() {
        closed = true
        deadlines.close()
        started.removeAll()
        // Calls still queued will not run (their connections are closed): let go of them.
        queue.removeAll { _ in }
        let waiting = idle
        idle.removeAll()
        for w in waiting { w.resume(false) }
    }
}

/// One worker task of a ``UnaryWorkerPool``. Loop-confined.
final class UnaryWorker: @unchecked Sendable {
    /// The call running now (connection and stream), for cancellation. Unowned: the running call holds its
    /// connection, and this is nil once it ended (no retain and release per call).
    @exclusivity(unchecked) private(set) unowned(unsafe) var connection: MuxConnection?
    @exclusivity(unchecked) private(set) var streamID: UInt32 = 0
    @exclusivity(unchecked) private(set) var callCancelled = false
    /// Counts the calls this worker ran: tells a deadline watch whether its call is still the one running.
    @exclusivity(unchecked) private(set) var generation: UInt64 = 0
    /// The deadline of the running call, if it has one.
    @exclusivity(unchecked) private(set) var callDeadline: Timestamp?
    /// In the pool's list of workers that started a call this turn.
    @exclusivity(unchecked) var listed = false
    var task: Task<Void, Never>?
    private var continuation: UnsafeContinuation<Bool, Never>?
    /// Bound as `CallScope.current` for the worker's life and handed to each call in its request.
    private let scope = CallScope()

    func resume(_ more: Bool) {
        let c = continuation
        continuation = nil
        c?.resume(returning: more)
    }

    /// Cancels the running call: the handler's task is cancelled, its reply will be dropped, and this worker ends
    /// after the handler returns.
    func cancelCall() {
        callCancelled = true
        task?.cancel()
    }

    /// Whether this worker still runs the call of `generation` (and it was not cancelled).
    @inline(__always)
    func isRunning(generation: UInt64) -> Bool { connection != nil && !callCancelled && self.generation == generation }

    /// The running call's deadline passed: its handler is cancelled and the client answered DEADLINE_EXCEEDED now;
    /// what the handler returns later is dropped.
    func expireCall() {
        guard let connection, !callCancelled else { return }
        let id = streamID
        cancelCall()
        connection.finishUnary(id, UnaryReply(head: ResponseHead(status: .error(.deadlineExceeded, "the call's deadline passed while its handler ran; the handler was cancelled")), message: nil))
    }

    nonisolated(nonsending) func run(in pool: UnaryWorkerPool) async {
        // One scope for the worker's life: its calls set their deadline there (see CallScope).
        await CallScope.$current.withValue(scope) { await drain(pool) }
    }

    private nonisolated(nonsending) func drain(_ pool: UnaryWorkerPool) async {
        pool.workerStarted()
        drain: while true {
            while let call = pool.nextCall() {
                await runCall(call, pool)
                // Only cancelling its call cancels a worker's task: no need to ask the task.
                if callCancelled { break drain }
            }
            guard pool.shouldPark() else { break }
            let more = await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in
                continuation = c
                pool.park(self)
            }
            if !more { break }
            pool.workerStarted()
        }
        task = nil
        pool.workerEnded(self)
    }

    /// Runs one call. Nothing of it (connection, message) stays referenced afterwards.
    private nonisolated(nonsending) func runCall(_ call: consuming UnaryWorkerPool.Call, _ pool: UnaryWorkerPool) async {
        let connection = call.connection
        let id = call.streamID
        call.request.value.scope = scope
        self.connection = connection
        streamID = id
        callCancelled = false
        generation &+= 1
        callDeadline = call.deadline
        if callDeadline != nil && !listed {
            listed = true
            pool.noteStarted(self)
        }
        let reply = await call.run()
        let cancelled = callCancelled
        self.connection = nil
        if !cancelled { connection.finishUnary(id, reply) }
    }
}

/// A value that a consuming method moves out: `take()` hands over the value itself, with no copy.
struct MoveBox<Value>: ~Copyable {
    var value: Value

    init(_ value: consuming Value) { self.value = value }

    consuming func take() -> Value { value }
}
