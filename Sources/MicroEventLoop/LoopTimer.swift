internal import CLibUV

/// A one-shot or repeating timer on one event loop. Loop-confined: create, cancel and use it on its loop.
///
/// The callback runs on the loop's thread. After ``cancel()`` (or loop shutdown) the callback never runs
/// again. The libuv handle is freed in its close callback, as libuv requires.
public final class LoopTimer: LoopResource {
    public unowned let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private var callback: ((LoopTimer) -> Void)?
    private var closed = false

    /// Schedules `callback` after `timeout` milliseconds, then every `repeatEvery` milliseconds if non-zero.
    public init(loop: EventLoop, timeout: UInt64, repeatEvery: UInt64 = 0, _ callback: @escaping (LoopTimer) -> Void) {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.callback = callback
        handle = .allocate(capacity: 1)
        uv_timer_init(loop.uvLoop, handle)
        uv_handle_set_data(UVHandle.cast(handle), Unmanaged.passRetained(self).toOpaque())
        uv_timer_start(handle, { h in
            let timer = Unmanaged<LoopTimer>.fromOpaque(uv_handle_get_data(UVHandle.cast(h!))!).takeUnretainedValue()
            timer.fire()
        }, timeout, repeatEvery)
    }

    /// Fires next after `timeout` milliseconds (instead of when it was due), then as configured. Ignored once
    /// cancelled.
    public func restart(timeout: UInt64) {
        guard !closed else { return }
        uv_timer_start(handle, { h in
            let timer = Unmanaged<LoopTimer>.fromOpaque(uv_handle_get_data(UVHandle.cast(h!))!).takeUnretainedValue()
            timer.fire()
        }, timeout, uv_timer_get_repeat(handle))
    }

    /// Lets the loop end even while this timer is pending (for housekeeping timers).
    public func unref() { uv_unref(UVHandle.cast(handle)) }

    private func fire() {
        guard let cb = callback else { return }
        if uv_timer_get_repeat(handle) == 0 {
            // One-shot: release our state before running, so the callback may schedule anew.
            cb(self)
            cancel()
        } else {
            cb(self)
        }
    }

    /// Stops the timer and frees its handle. Idempotent.
    public func cancel() {
        guard !closed else { return }
        closed = true
        callback = nil
        uv_timer_stop(handle)
        uv_close(UVHandle.cast(handle)) { h in
            let timer = Unmanaged<LoopTimer>.fromOpaque(uv_handle_get_data(h!)!).takeRetainedValue()
            timer.handle.deallocate()
        }
    }

    func closeForShutdown() { cancel() }

    /// Whether the timer has been cancelled or has fired (one-shot).
    public var isCancelled: Bool { closed }
}

extension EventLoop {
    /// Schedules `body` on this loop after `milliseconds`. Safe from any thread; the returned handle
    /// cancels it (also from any thread).
    @discardableResult
    public func schedule(afterMilliseconds milliseconds: UInt64, _ body: @escaping @Sendable () -> Void) -> ScheduledTask {
        let task = ScheduledTask(loop: self)
        execute { [self] in
            guard !task.cancelRequested else { return }
            task.timer = LoopTimer(loop: self, timeout: milliseconds) { _ in body() }
        }
        return task
    }
}

/// A handle for work scheduled with ``EventLoop/schedule(afterMilliseconds:_:)``.
public final class ScheduledTask: @unchecked Sendable {
    private let loop: EventLoop
    // Loop-confined.
    var timer: LoopTimer?
    var cancelRequested = false

    init(loop: EventLoop) { self.loop = loop }

    /// Cancels the work if it has not run yet. Safe from any thread.
    public func cancel() {
        loop.execute { [self] in
            cancelRequested = true
            timer?.cancel()
            timer = nil
        }
    }
}
