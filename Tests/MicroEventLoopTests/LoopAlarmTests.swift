import Dispatch
import Glibc
import MicroEventLoop
import Synchronization
import Testing

/// `EventLoop.scheduleAlarm`: microsecond alarms on a loop (a timerfd and a check handle).
@Suite("Loop alarms")
struct LoopAlarmTests {
    /// CLOCK_BOOTTIME in nanoseconds, the alarms' clock.
    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    final class Log: Sendable {
        let fired = Mutex<[(Int, Int64)]>([])
        let offLoop = Atomic<Int>(0)
        func record(_ id: Int, on loop: EventLoop) {
            if !loop.inEventLoop { offLoop.add(1, ordering: .relaxed) }
            let t = LoopAlarmTests.now()
            fired.withLock { $0.append((id, t)) }
        }
        var ids: [Int] { fired.withLock { $0.map(\.0) } }
    }

    @Test("alarms fire on the loop, in deadline order, never before their deadline; a cancelled one never fires")
    func order() async throws {
        let group = EventLoopGroup(threads: 1)
        let loop = group.loops[0]
        let log = Log()
        let scheduled = Mutex<[(Int, Int64, LoopAlarm)]>([])
        let cancelledElsewhere = DispatchSemaphore(value: 0)
        // Scheduled out of order, 0.5 ms apart. The loop then waits (its own thread, not the test's) until the test
        // has cancelled alarm 3 from another thread, so the cancel surely comes before any alarm can fire.
        let order = [4, 1, 3, 0, 2]
        loop.execute {
            let base = Self.now() + 2_000_000
            let made = order.map { id in
                let at = base + Int64(id) * 500_000
                return (id, at, loop.scheduleAlarm(atBoottimeNanoseconds: at) { log.record(id, on: loop) })
            }
            scheduled.withLock { $0 = made }
            cancelledElsewhere.wait()
        }
        #expect(await eventually(timeout: .seconds(30)) { scheduled.withLock { $0.count } == 5 })
        let alarms = scheduled.withLock { $0 }
        alarms.first { $0.0 == 3 }!.2.cancel()
        cancelledElsewhere.signal()
        #expect(await eventually(timeout: .seconds(30)) { log.ids.count == 4 })
        #expect(log.ids == [0, 1, 2, 4])
        for (id, t) in log.fired.withLock({ $0 }) {
            let at = alarms.first { $0.0 == id }!.1
            #expect(t >= at, "alarm \(id) fired \(at - t) ns early")
        }
        #expect(log.offLoop.load(ordering: .relaxed) == 0)
        // The cancelled alarm's deadline is before alarm 4's, which fired: it had its chance and did not run.
        #expect(log.ids == [0, 1, 2, 4])
        shutdownClean(group)
    }

    @Test("an alarm whose deadline passed fires in the next turn; an idle loop is woken for a later one")
    func pastAndIdle() async throws {
        let group = EventLoopGroup(threads: 1)
        let loop = group.loops[0]
        let log = Log()
        try await loop.submit { _ = loop.scheduleAlarm(atBoottimeNanoseconds: Self.now() - 1_000_000) { log.record(0, on: loop) } }
        #expect(await eventually(timeout: .seconds(30)) { log.ids == [0] })
        // The loop is idle now (blocked in poll): the timerfd must wake it.
        try await loop.submit { _ = loop.scheduleAlarm(atBoottimeNanoseconds: Self.now() + 2_000_000) { log.record(1, on: loop) } }
        #expect(await eventually(timeout: .seconds(30)) { log.ids == [0, 1] })
        shutdownClean(group)
    }

    @Test("an alarm's action may schedule the next; alarms pending at shutdown are dropped and the loop closes clean")
    func chainAndShutdown() async throws {
        let group = EventLoopGroup(threads: 1)
        let loop = group.loops[0]
        let count = Atomic<Int>(0)
        @Sendable func again() {
            guard count.add(1, ordering: .relaxed).newValue < 20 else { return }
            _ = loop.scheduleAlarm(atBoottimeNanoseconds: Self.now() + 100_000) { again() }
        }
        try await loop.submit {
            _ = loop.scheduleAlarm(atBoottimeNanoseconds: Self.now()) { again() }
            _ = loop.scheduleAlarm(atBoottimeNanoseconds: Self.now() + 3_600_000_000_000) { Issue.record("an hour-long alarm fired") }
        }
        #expect(await eventually(timeout: .seconds(30)) { count.load(ordering: .relaxed) == 20 })
        shutdownClean(group)
    }
}
