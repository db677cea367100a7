internal import CLibUV
import Synchronization

/// A one-shot alarm on an event loop, precise to microseconds (libuv's timers count milliseconds): see
/// ``EventLoop/scheduleAlarm(atBoottimeNanoseconds:_:)``. ``cancel()`` may be called from any thread; an alarm
/// cancelled before it fires never runs its action (one that races its firing may run).
public final class LoopAlarm: Sendable {
    /// CLOCK_BOOTTIME nanoseconds (MicroCore's `Timestamp`).
    let deadline: Int64
    let action: @Sendable () -> Void
    private let cancelled = Atomic<Bool>(false)

    init(deadline: Int64, action: @escaping @Sendable () -> Void) {
        self.deadline = deadline
        self.action = action
    }

    public func cancel() { cancelled.store(true, ordering: .releasing) }

    var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
}

/// The alarms of one loop: a min-heap by deadline. Due alarms fire after every poll while some wait (a check
/// handle, so a busy loop fires them within a turn), and a timerfd armed for the earliest wakes a loop that
/// blocks. The fd is re-armed only when an earlier alarm comes or the armed time passed: a cancelled earliest
/// alarm costs one spurious wake-up, not a system call at cancel time. Loop-confined (the loop's per-loop
/// singleton); its handles close with the loop.
final class LoopAlarms: LoopResource {
    unowned let loop: EventLoop
    private var heap: [LoopAlarm] = []
    private let fd: Int32
    private let poll: UnsafeMutablePointer<uv_poll_t>
    private let check: UnsafeMutablePointer<uv_check_t>
    /// The absolute time the fd is armed for (0: not armed).
    private var armedAt: Int64 = 0
    private var checking = false
    private var closed = false

    init(loop: EventLoop) {
        self.loop = loop
        fd = micro_alarm_fd_create()
        precondition(fd >= 0, "timerfd_create failed")
        poll = .allocate(capacity: 1)
        check = .allocate(capacity: 1)
        let me = Unmanaged.passUnretained(self).toOpaque()  // the loop's locals keep it alive
        uv_poll_init(loop.uvLoop, poll, fd)
        uv_handle_set_data(UVHandle.cast(poll), me)
        uv_poll_start(poll, Int32(UV_READABLE.rawValue)) { h, _, _ in
            let alarms = Unmanaged<LoopAlarms>.fromOpaque(uv_handle_get_data(UVHandle.cast(h!))!).takeUnretainedValue()
            alarms.woken()
        }
        uv_unref(UVHandle.cast(poll))
        uv_check_init(loop.uvLoop, check)
        uv_handle_set_data(UVHandle.cast(check), me)
    }

    func schedule(_ alarm: LoopAlarm) {
        guard !closed else { return }
        heap.append(alarm)
        siftUp(heap.count - 1)
        if !checking {
            checking = true
            uv_check_start(check) { h in
                Unmanaged<LoopAlarms>.fromOpaque(uv_handle_get_data(UVHandle.cast(h!))!).takeUnretainedValue().fireDue()
            }
            uv_unref(UVHandle.cast(check))
        }
        if armedAt == 0 || alarm.deadline < armedAt { arm(alarm.deadline) }
    }

    private func woken() {
        micro_alarm_fd_clear(fd)
        armedAt = 0
        fireDue()
    }

    /// Fires what is due, drops cancelled alarms at the top, and keeps the fd armed for the earliest left.
    private func fireDue() {
        guard !closed else { return }
        let now = Int64(micro_boottime_ns())
        while let top = heap.first, top.isCancelled || top.deadline <= now {
            popFirst()
            if !top.isCancelled { top.action() }
        }
        guard let first = heap.first else {
            if checking {
                checking = false
                uv_check_stop(check)
            }
            return
        }
        if armedAt == 0 || first.deadline < armedAt || armedAt <= now { arm(first.deadline) }
    }

    private func arm(_ deadline: Int64) {
        armedAt = max(1, deadline)
        _ = micro_alarm_fd_arm(fd, armedAt)
    }

    func closeForShutdown() {
        guard !closed else { return }
        closed = true
        heap = []
        uv_poll_stop(poll)
        uv_check_stop(check)
        let fd = self.fd
        uv_close(UVHandle.cast(poll)) { h in
            UnsafeMutableRawPointer(h!).deallocate()
        }
        uv_close(UVHandle.cast(check)) { h in
            UnsafeMutableRawPointer(h!).deallocate()
        }
        close(fd)
    }

    // MARK: - The heap

    private func siftUp(_ i: Int) {
        var i = i
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].deadline < heap[parent].deadline else { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private func popFirst() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].deadline < heap[m].deadline { m = l }
            if r < heap.count && heap[r].deadline < heap[m].deadline { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}

extension EventLoop {
    /// Runs `action` on this loop at `deadline` (nanoseconds of CLOCK_BOOTTIME, which MicroCore's `Timestamp`
    /// reads), at once in the next turn if it passed. Precise to the loop's turn when the loop is busy, and to
    /// the kernel's timer otherwise. Call on the loop; cancel from anywhere. Not promised: anything once the loop
    /// shuts down (pending alarms are dropped).
    public func scheduleAlarm(atBoottimeNanoseconds deadline: Int64, _ action: @escaping @Sendable () -> Void) -> LoopAlarm {
        preconditionInEventLoop()
        let alarm = LoopAlarm(deadline: deadline, action: action)
        loopLocal(LoopAlarms.self) { LoopAlarms(loop: self) }.schedule(alarm)
        return alarm
    }
}
