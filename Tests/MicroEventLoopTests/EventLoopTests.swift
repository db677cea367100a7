import Foundation
import Glibc
import MicroEventLoop
import Synchronization
import Testing

private struct Boom: Error, Equatable { let n: Int }

@Suite("EventLoop")
struct EventLoopTests {
    @Test("execute from 4 threads x 10,000 items: each runs exactly once, on the loop, in order per thread")
    func executeFromManyThreads() async {
        let loop = EventLoop()
        let producers = 4, items = 10_000
        // Loop-confined: the next sequence number expected from each producer, and the anomalies seen.
        let state = LoopConfined((next: [Int](repeating: 0, count: producers), offLoop: 0, outOfOrder: 0, total: 0))
        let rejected = Atomic<Int>(0)
        await onThreads(producers) { p in
            for i in 0..<items {
                let ok = loop.execute {
                    if !loop.inEventLoop { state.value.offLoop += 1 }
                    if state.value.next[p] != i { state.value.outOfOrder += 1 }
                    state.value.next[p] = i + 1
                    state.value.total += 1
                }
                if !ok { rejected.add(1, ordering: .relaxed) }
            }
        }
        #expect(rejected.load(ordering: .relaxed) == 0)
        let total = Locked(0)
        let finished = await eventually {
            _ = loop.execute { total.withLock { $0 = state.value.total } }
            return total.value == producers * items
        }
        #expect(finished)
        let snapshot = try? await loop.submit { [state] in
            (state.value.next, state.value.offLoop, state.value.outOfOrder, state.value.total)
        }
        #expect(snapshot?.0 == [Int](repeating: items, count: producers))
        #expect(snapshot?.1 == 0, "work ran off the loop's thread")
        #expect(snapshot?.2 == 0, "work from one thread ran out of order")
        #expect(snapshot?.3 == producers * items)
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("inEventLoop is false off the loop and true on it")
    func inEventLoop() async throws {
        let loop = EventLoop()
        #expect(!loop.inEventLoop)
        #expect(try await loop.submit { loop.inEventLoop })
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("execute from the loop's own thread queues the work instead of running it inline")
    func executeFromLoopQueues() async throws {
        let loop = EventLoop()
        let order = Locked<[String]>([])
        try await loop.submit {
            loop.execute { order.withLock { $0.append("queued") } }
            order.withLock { $0.append("caller") }
            loop.executeOnLoop { order.withLock { $0.append("onLoop") } }
        }
        #expect(await eventually { order.value.count == 3 })
        #expect(order.value == ["caller", "queued", "onLoop"])
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("executeOnLoop runs non-Sendable work on the loop")
    func executeOnLoop() async throws {
        final class NotSendable { var n = 0 }
        let loop = EventLoop()
        let result = Locked(-1)
        try await loop.submit {
            let box = NotSendable()
            for _ in 0..<100 { loop.executeOnLoop { box.n += 1 } }
            loop.executeOnLoop { result.withLock { $0 = box.n } }
        }
        #expect(await eventually { result.value == 100 })
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("submit returns the value and rethrows the error")
    func submitValuesAndErrors() async throws {
        let loop = EventLoop()
        #expect(try await loop.submit { 6 * 7 } == 42)
        #expect(try await loop.submit { "on \(loop.index)" } == "on 0")
        await #expect(throws: Boom(n: 3)) { try await loop.submit { () throws -> Int in throw Boom(n: 3) } }
        // Many concurrent submits each get their own answer.
        let sums = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for i in 0..<200 { group.addTask { (i, try await loop.submit { i * 2 }) } }
            var all: [(Int, Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        #expect(sums.count == 200)
        #expect(sums.allSatisfy { $0.1 == $0.0 * 2 })
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("after shutdown, execute returns false and never runs the work; submit throws")
    func executeAfterShutdown() async {
        let loop = EventLoop()
        #expect(loop.shutdownGracefully() == 0)
        let ran = Atomic<Bool>(false)
        #expect(loop.execute { ran.store(true, ordering: .relaxed) } == false)
        await #expect(throws: EventLoopError.shutdown) { try await loop.submit { 1 } }
        try? await Task.sleep(for: .milliseconds(20))
        #expect(ran.load(ordering: .relaxed) == false)
        // A second shutdown is harmless and reports the same result.
        #expect(loop.shutdownGracefully() == 0)
        #expect(loop.loopCloseResult == 0)
    }

    @Test("work queued before shutdown still runs")
    func workBeforeShutdownRuns() {
        let loop = EventLoop()
        #expect(loop.loopCloseResult == Int32.min, "still running")
        let count = Atomic<Int>(0)
        for _ in 0..<1000 { loop.execute { count.add(1, ordering: .relaxed) } }
        #expect(loop.shutdownGracefully() == 0)
        #expect(count.load(ordering: .relaxed) == 1000)
    }

    @Test("a Task with the loop as executor preference runs on the loop's thread, also after suspending")
    func taskExecutorPreference() async throws {
        let loop = EventLoop()
        let results = await Task(executorPreference: loop) { () -> [Bool] in
            var seen = [loop.inEventLoop]
            await Task.yield()
            seen.append(loop.inEventLoop)
            try? await Task.sleep(for: .milliseconds(5))
            seen.append(loop.inEventLoop)
            return seen
        }.value
        #expect(results == [true, true, true])
        // Child tasks of a task group inherit the preference.
        let children = await withTaskExecutorPreference(loop) {
            await withTaskGroup(of: Bool.self) { g in
                for _ in 0..<10 { g.addTask { loop.inEventLoop } }
                var all: [Bool] = []
                for await b in g { all.append(b) }
                return all
            }
        }
        #expect(children == [Bool](repeating: true, count: 10))
        #expect(loop.shutdownGracefully() == 0)
    }

    @Test("shutdownGracefully returns 0 for an idle loop, and its thread is gone")
    func idleShutdown() async throws {
        for _ in 0..<20 {
            let loop = EventLoop()
            #expect(loop.shutdownGracefully() == 0)
        }
    }
}

@Suite("EventLoopGroup")
struct EventLoopGroupTests {
    @Test("next() goes round robin; currentLoop finds the caller's loop")
    func roundRobin() async throws {
        let group = EventLoopGroup(threads: 3)
        #expect(group.loops.count == 3)
        #expect(group.loops.map(\.index) == [0, 1, 2])
        let picks = (0..<6).map { _ in group.next().index }
        #expect(picks == [0, 1, 2, 0, 1, 2])
        #expect(group.currentLoop == nil)
        for loop in group.loops {
            let current = try await loop.submit { group.currentLoop?.index }
            #expect(current == loop.index)
        }
        // Each loop has its own thread.
        let threads = try await withThrowingTaskGroup(of: UInt.self) { g in
            for loop in group.loops { g.addTask { try await loop.submit { UInt(bitPattern: Int(pthread_self())) } } }
            var s = Set<UInt>()
            for try await t in g { s.insert(t) }
            return s
        }
        #expect(threads.count == 3)
        shutdownClean(group)
    }

    @Test("the default group has one loop per core")
    func defaultSize() {
        let group = EventLoopGroup()
        #expect(group.loops.count == EventLoopGroup.coreCount)
        #expect(EventLoopGroup.coreCount >= 1)
        shutdownClean(group)
    }


    /// Regression: a second shutdown, from a thread made after the loop's thread was joined, returned the result
    /// instead of failing "would deadlock on the loop's own thread" (glibc hands the new thread the joined one's
    /// pthread_t, so it looked like the loop's own).
    @Test func shutdownAgainFromNewThreadsReturnsTheResult() async {
        for _ in 0..<5 {
            let group = EventLoopGroup(threads: 1)
            // Joined here, the loop's thread descriptor is the one glibc hands out next.
            #expect(group.shutdownGracefully())
            for _ in 0..<4 { #expect(await group.shutdown()) }
        }
    }
}

extension ChildProcessTests {
    @Suite("EventLoop shutdown under load (child process)")
    struct EventLoopShutdownRaceTests {
        @Test("shutdown racing with execute from other threads: clean, never a crash (child process, many rounds)",
              .timeLimit(.minutes(1)))
        func shutdownUnderLoad() async {
            // Run in a child process: if the race is lost, libuv aborts the process.
            await #expect(processExitsWith: .success, "SIGABRT here: uv_async_send on a loop that is already closed") {
                let start = ContinuousClock.now
                var rounds = 0
                var failures = 0
                // Bounded to 1 s and 4 producer threads: the child shares 2 cores with the rest of the test run.
                while ContinuousClock.now - start < .seconds(1) {
                    rounds += 1
                    let group = EventLoopGroup(threads: 2)
                    let stop = Atomic<Bool>(false)
                    let ranAfterRejection = Atomic<Int>(0)
                    let running = Atomic<Int>(4)
                    for i in 0..<4 {
                        Thread {
                            let loop = group.loops[i % 2]
                            var spin = 0
                            while !stop.load(ordering: .relaxed) {
                                if !loop.execute({}) {
                                    // Once rejected, always rejected, and never run.
                                    if loop.execute({ ranAfterRejection.add(1, ordering: .relaxed) }) {
                                        ranAfterRejection.add(1000, ordering: .relaxed)
                                    }
                                    break
                                }
                                for _ in 0..<(spin % 200) { spin &+= 1 }
                                spin &+= 7
                            }
                            running.subtract(1, ordering: .relaxed)
                        }.start()
                    }
                    usleep(UInt32.random(in: 100...2000))
                    if !group.shutdownGracefully() { failures += 1 }
                    stop.store(true, ordering: .relaxed)
                    while running.load(ordering: .relaxed) > 0 { usleep(100) }
                    if ranAfterRejection.load(ordering: .relaxed) != 0 { failures += 1 }
                }
                #expect(failures == 0, "\(failures) bad rounds of \(rounds)")
                exit(failures == 0 ? 0 : 1)
            }
        }
    }
}
