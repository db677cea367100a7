internal import MicroEventLoop
internal import MicroTransport

/// Long-lived tasks on one loop that run unary handlers, so that a call costs no task creation: a worker that
/// finished a call waits (on an unsafe continuation, allocation-free) for the next one. A call finds an idle
/// worker, or starts a new one when every worker is busy (its handler suspended).
///
/// Loop-confined: every field is used on the loop's thread only. A worker whose task was cancelled (its call was
/// cancelled, or the connection lost) ends after its handler returns; cancellation is sticky on a task.
final class UnaryWorkerPool: @unchecked Sendable {
    unowned let loop: EventLoop
    /// Workers waiting for a call.
    private var idle: [UnaryWorker] = []
    /// Idle workers kept; a worker finding more idle ones ends.
    let maxIdle: Int
    private(set) var closed = false
    /// Workers alive (busy or idle).
    private(set) var liveWorkers = 0

    init(loop: EventLoop, maxIdle: Int = 1024) {
        self.loop = loop
        self.maxIdle = maxIdle
    }

    /// Runs `call` on an idle worker or a new one; returns the worker, which is the call's handle (cancel).
    func run(_ call: UnaryWorker.Call) -> UnaryWorker {
        if let w = idle.popLast() {
            w.call = call
            w.resume(true)
            return w
        }
        let w = UnaryWorker()
        w.call = call
        liveWorkers += 1
        w.task = Task(executorPreference: loop) { await w.run(in: self) }
        return w
    }

    /// A worker finished its call: true when it should wait for another.
    func parkIfWanted(_ worker: UnaryWorker) -> Bool {
        !closed && idle.count < maxIdle && !Task.isCancelled
    }

    func park(_ worker: UnaryWorker) { idle.append(worker) }

    func workerEnded() { liveWorkers -= 1 }

    /// Ends every idle worker (the server stops). Busy ones end when their handler returns.
    func close() {
        closed = true
        let waiting = idle
        idle.removeAll()
        for w in waiting { w.resume(false) }
    }
}

/// One worker task of a ``UnaryWorkerPool``, and the handle of the call it runs. Loop-confined.
final class UnaryWorker: @unchecked Sendable {
    struct Call {
        let connection: MuxConnection
        let streamID: UInt32
        let handler: any UnaryHandler
        let request: UnaryRequest
    }

    /// The call to run next (set before the worker is resumed).
    var call: Call?
    /// The stream id of the call running now; 0 when none.
    var runningStream: UInt32 = 0
    var task: Task<Void, Never>?
    private var continuation: UnsafeContinuation<Bool, Never>?

    func resume(_ more: Bool) {
        let c = continuation
        continuation = nil
        c?.resume(returning: more)
    }

    /// Cancels the running call: its handler's task is cancelled, and this worker ends after it returns.
    func cancelRunningCall() {
        runningStream = 0
        task?.cancel()
    }

    func run(in pool: UnaryWorkerPool) async {
        while self.call != nil {
            await runCall()
            guard pool.parkIfWanted(self) else { break }
            let more = await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in
                continuation = c
                pool.park(self)
            }
            if !more { break }
        }
        task = nil
        pool.workerEnded()
    }

    /// Runs the assigned call. A function of its own, so that nothing of the call (its connection, its message)
    /// stays referenced while the worker waits for the next one.
    private func runCall() async {
        guard let call = self.call else { return }
        self.call = nil
        runningStream = call.streamID
        let reply = await call.handler.handle(call.request)
        if runningStream == call.streamID {
            runningStream = 0
            call.connection.finishUnary(call.streamID, reply)
        }
    }
}
