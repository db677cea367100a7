internal import MicroEventLoop
internal import MicroCore
internal import MicroFraming

/// Enforces the deadlines of the calls a server runs on one loop (docs/PROTOCOL.md §6.2): when a call's budget
/// runs out, its handler is cancelled and the client gets DEADLINE_EXCEEDED from the server, whether or not it
/// sent CANCEL.
///
/// One heap and one loop timer for all of a loop's calls, no timer per call. A unary call enters the heap only
/// if its handler is still running at the end of the loop turn it started in (it suspended): a handler that
/// answers at once costs no entry. Streams enter when they open. Entries of calls that ended stay until they come
/// up or the heap is compacted (when they outnumber the live ones), so the heap stays within about twice the
/// calls that can still expire.
///
/// Loop-confined: used on its loop's thread only.
final class ServerDeadlines {
    enum Subject {
        /// The call a worker ran at the given generation (a worker runs many calls, one at a time).
        case unary(UnaryWorker, generation: UInt64)
        /// Weak: an entry must not keep a closed stream (and its connection) alive until it comes due.
        case stream(WeakStream)
    }

    struct WeakStream {
        weak var stream: MuxStream?
    }

    /// A call being watched and its deadline (checked against the clock when its loop time comes: loop time is
    /// read at the start of a loop turn, so a timer may fire up to a turn early).
    struct Watch {
        var subject: Subject
        var deadline: Timestamp
    }

    unowned let loop: EventLoop
    private var heap = DeadlineHeap<Watch>()
    private var timer: LoopTimer?
    private var timerAt: UInt64 = .max
    /// The heap size above which it is compacted next.
    private var compactAbove = 64

    init(loop: EventLoop) { self.loop = loop }

    var count: Int { heap.count }

    /// Loop time (ms) of `deadline`, read against `now`: rounded up, so a call never expires early.
    func loopTime(of deadline: Timestamp, now: Timestamp, loopNow: UInt64) -> UInt64 {
        let remaining = now.nanoseconds(to: deadline)
        if remaining <= 0 { return loopNow }
        let ms = UInt64(remaining / 1_000_000) + (remaining % 1_000_000 == 0 ? 0 : 1)
        let (at, overflow) = loopNow.addingReportingOverflow(ms)
        return overflow ? .max : at
    }

    /// Watches `subject` until `deadline`; `now` and `loopNow` are readings of both clocks taken together.
    func watch(_ subject: Subject, deadline: Timestamp, now: Timestamp, loopNow: UInt64) {
        heap.insert(at: loopTime(of: deadline, now: now, loopNow: loopNow), key: Watch(subject: subject, deadline: deadline))
        if heap.count > compactAbove {
            heap.compact { Self.isLive($0.key.subject) }
            compactAbove = 2 * heap.count + 64
        }
        arm()
    }

    /// Cancels every watch (the server stops).
    func close() {
        heap.removeAll()
        timer?.cancel()
        timer = nil
        timerAt = .max
    }

    private static func isLive(_ subject: Subject) -> Bool {
        switch subject {
        case .unary(let w, let generation): w.isRunning(generation: generation)
        case .stream(let s): s.stream.map { !$0.closed } ?? false
        }
    }

    private func arm() {
        guard let earliest = heap.earliest, earliest < timerAt else { return }
        let now = loop.nowMilliseconds
        timerAt = earliest
        if let timer {
            timer.restart(timeout: earliest > now ? earliest - now : 0)
        } else {
            timer = LoopTimer(loop: loop, timeout: earliest > now ? earliest - now : 0) { [weak self] _ in self?.fire() }
        }
    }

    private func fire() {
        timer = nil  // one-shot: it is closed after this callback
        timerAt = .max
        let loopNow = loop.nowMilliseconds
        var now: Timestamp?
        var early: [Watch] = []
        while let due = heap.popDue(now: loopNow) {
            guard Self.isLive(due.key.subject) else { continue }
            let t = now ?? .now
            now = t
            if due.key.deadline > t {
                early.append(due.key)
                continue
            }
            switch due.key.subject {
            case .unary(let w, _): w.expireCall()
            case .stream(let s): if let stream = s.stream { stream.connection.expireStream(stream) }
            }
        }
        for w in early { heap.insert(at: loopTime(of: w.deadline, now: now!, loopNow: loopNow), key: w) }
        arm()
    }
}
