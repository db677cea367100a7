import Foundation
import MicroCore
import MicroCoreTestSupport
import Synchronization
import Testing

@Suite("BackgroundExecutor and ChangeSignal")
struct BackgroundExecutorTests {
    @Test("a task on the background executor runs and sleeps while every thread of the shared pool is held")
    func runsWhileThePoolIsHeld() async throws {
        let done = Box(false)
        let spinners = 2 * ProcessInfo.processInfo.activeProcessorCount
        let giveUp = Timestamp.now.advanced(by: .seconds(30))
        Task(executorPreference: BackgroundExecutor.shared) {
            try? await BackgroundExecutor.shared.sleep(for: .milliseconds(20))
            done.value.store(true, ordering: .relaxed)
        }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<spinners {
                group.addTask {
                    // Holds its thread without ever suspending, as a program's busy loop would.
                    while !done.value.load(ordering: .relaxed) && Timestamp.now < giveUp {}
                }
            }
        }
        let ran = done.value.load(ordering: .relaxed)
        #expect(ran, "the background task never ran while the pool was held (gave up after 30 s)")
    }

    @Test("sleep(until:) returns no earlier than its deadline, for sleeps added in any order")
    func sleepsUntilTheirDeadlines() async throws {
        let woken = Box(0)
        let start = Timestamp.now
        await withTaskGroup(of: Void.self) { group in
            for ms in [60, 20, 40, 0, -10] {
                group.addTask {
                    let deadline = start.advanced(by: .milliseconds(ms))
                    try? await BackgroundExecutor.shared.sleep(until: deadline)
                    #expect(Timestamp.now >= deadline)
                    woken.value.add(1, ordering: .relaxed)
                }
            }
        }
        let count = woken.value.load(ordering: .relaxed)
        #expect(count == 5)
    }

    @Test("a sleeping task that is cancelled wakes at once with CancellationError")
    func sleepIsCancellable() async throws {
        let sleeper = Task { try await BackgroundExecutor.shared.sleep(for: .seconds(600)) }
        sleeper.cancel()
        let result = try await withTimeout(seconds: 20, "the cancelled sleep") { await sleeper.result }
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test("many cancelled long sleeps do not keep the executor from waking short ones")
    func manyCancelledSleeps() async throws {
        for _ in 0..<500 {
            let t = Task { try await BackgroundExecutor.shared.sleep(for: .seconds(600)) }
            t.cancel()
            _ = await t.result
        }
        try await withTimeout(seconds: 20, "a short sleep after many cancelled ones") {
            try await BackgroundExecutor.shared.sleep(for: .milliseconds(5))
        }
    }

    @Test("ChangeSignal: a wait ends on a signal, at once when the version moved, and at its deadline")
    func changeSignal() async throws {
        let signal = ChangeSignal()
        let seen = signal.version
        let waiter = Task { await signal.wait(after: seen, until: Timestamp.now.advanced(by: .seconds(600))) }
        signal.signal()
        try await withTimeout(seconds: 20, "the signalled wait") { await waiter.value }
        #expect(signal.version == seen + 1)

        // Already moved: no wait.
        try await withTimeout(seconds: 20, "a wait for a version already passed") {
            await signal.wait(after: seen, until: Timestamp.now.advanced(by: .seconds(600)))
        }

        // Nothing happens: the deadline ends it.
        let deadline = Timestamp.now.advanced(by: .milliseconds(50))
        await signal.wait(after: signal.version, until: deadline)
        #expect(Timestamp.now >= deadline)
    }

    @Test("ChangeSignal: a cancelled wait ends at once")
    func changeSignalCancel() async throws {
        let signal = ChangeSignal()
        let waiter = Task { await signal.wait(after: signal.version, until: Timestamp.now.advanced(by: .seconds(600))) }
        waiter.cancel()
        try await withTimeout(seconds: 20, "the cancelled wait") { await waiter.value }
    }
}

/// An atomic shared by test tasks.
final class Box<Value: AtomicRepresentable>: Sendable where Value: Sendable {
    let value: Atomic<Value>
    init(_ initial: Value) { value = Atomic(initial) }
}
