import MicroCoreTestSupport
import MicroCore
import Testing

/// How one `next()` call ended.
enum NextOutcome<P: Sendable & Equatable>: Sendable, Equatable {
    case value(P?)
    case transport(TransportError.Code)
    case cancellation
    case other(String)
}

func outcome<P: Sendable & Equatable>(_ q: InboundQueue<P>) async -> NextOutcome<P> {
    do {
        return .value(try await q.next())
    } catch let e as TransportError {
        return .transport(e.code)
    } catch is CancellationError {
        return .cancellation
    } catch {
        return .other("\(error)")
    }
}

@Suite("InboundQueue")
struct InboundQueueTests {
    @Test("parts yielded before next() are returned in order")
    func yieldThenNext() async throws {
        let q = InboundQueue<Int>()
        #expect(q.yield(1))
        #expect(q.yield(2))
        #expect(q.yield(3))
        let got = try await withTimeout(seconds: 2) {
            [try await q.next(), try await q.next(), try await q.next()]
        }
        #expect(got == [1, 2, 3])
        #expect(!q.isFinished)
    }

    @Test("a waiting next() is resumed by the next yield")
    func nextThenYield() async throws {
        let q = InboundQueue<Int>()
        let consumer = Task { try await q.next() }
        await pause(milliseconds: 50)  // let the consumer suspend
        #expect(q.yield(42))
        let got = try await withTimeout(seconds: 2) { try await consumer.value }
        #expect(got == 42)
        // The queue keeps working after the hand-off.
        #expect(q.yield(43))
        #expect(try await withTimeout(seconds: 2) { try await q.next() } == 43)
    }

    @Test("finish() ends the queue after the buffered parts")
    func finishAfterBufferedParts() async throws {
        let q = InboundQueue<String>()
        q.yield("a")
        q.yield("b")
        q.finish()
        #expect(q.isFinished)
        let got = try await withTimeout(seconds: 2) {
            [try await q.next(), try await q.next(), try await q.next(), try await q.next()]
        }
        #expect(got == ["a", "b", nil, nil])
    }

    @Test("finish() wakes a waiting consumer with nil")
    func finishWakesWaiter() async throws {
        let q = InboundQueue<Int>()
        let consumer = Task { try await q.next() }
        await pause(milliseconds: 50)
        q.finish()
        let got = try await withTimeout(seconds: 2) { try await consumer.value }
        #expect(got == nil)
    }

    @Test("finish(throwing:) throws the error and drops the buffered parts; the first finish wins")
    func finishThrowingDropsBuffered() async throws {
        let q = InboundQueue<Int>()
        q.yield(1)
        q.yield(2)
        let error = TransportError(.connectionClosed, "gone")
        q.finish(throwing: error)
        q.finish()  // ignored: the first call wins
        for _ in 0..<2 {
            let thrown = await #expect(throws: TransportError.self) {
                try await withTimeout(seconds: 2) { try await q.next() }
            }
            #expect(thrown == error)
        }
    }

    @Test("finish(throwing:) wakes a waiting consumer with the error")
    func finishThrowingWakesWaiter() async throws {
        let q = InboundQueue<Int>()
        let consumer = Task { await outcome(q) }
        await pause(milliseconds: 50)
        q.finish(throwing: TransportError(.cancelled, "stop"))
        let got = try await withTimeout(seconds: 2) { await consumer.value }
        #expect(got == .transport(.cancelled))
    }

    @Test("yield after finish returns false and drops the part")
    func yieldAfterFinish() async throws {
        let q = InboundQueue<Int>()
        #expect(q.yield(1))
        q.finish()
        #expect(q.yield(2) == false)
        let got = try await withTimeout(seconds: 2) { [try await q.next(), try await q.next()] }
        #expect(got == [1, nil])

        let failed = InboundQueue<Int>()
        failed.finish(throwing: TransportError(.cancelled, "x"))
        #expect(failed.yield(3) == false)
    }

    @Test("onCredit is called once the threshold of measured bytes is taken, with their sum")
    func creditThreshold() async throws {
        let grants = Locked<[Int]>([])
        let q = InboundQueue<[UInt8]>(
            measure: { $0.count },
            creditThreshold: 10,
            onCredit: { n in grants.append(n) })
        for _ in 0..<5 { q.yield([UInt8](repeating: 1, count: 4)) }
        q.yield([])  // measures 0: never counts
        #expect(grants.value.isEmpty, "yielding is not taking")

        _ = try await withTimeout(seconds: 2) { try await q.next() }  // 4
        _ = try await withTimeout(seconds: 2) { try await q.next() }  // 8
        #expect(grants.value.isEmpty, "8 bytes taken, threshold 10")
        _ = try await withTimeout(seconds: 2) { try await q.next() }  // 12 >= 10
        #expect(grants.value == [12])
        _ = try await withTimeout(seconds: 2) { try await q.next() }  // 4
        _ = try await withTimeout(seconds: 2) { try await q.next() }  // 8
        _ = try await withTimeout(seconds: 2) { try await q.next() }  // empty part: still 8
        #expect(grants.value == [12])

        // A part handed straight to a waiting consumer is measured too.
        let consumer = Task { try await q.next() }
        await pause(milliseconds: 50)
        q.yield([1, 2, 3])  // 11 >= 10
        #expect(try await withTimeout(seconds: 2) { try await consumer.value } == [1, 2, 3])
        #expect(await eventually(seconds: 2) { grants.value == [12, 11] })
        #expect(grants.value == [12, 11])
    }

    @Test("parts measuring 0 never produce credit")
    func unmeasuredPartsGiveNoCredit() async throws {
        let grants = Locked<[Int]>([])
        let q = InboundQueue<Int>(creditThreshold: 1, onCredit: { n in grants.append(n) })
        for i in 0..<10 { q.yield(i) }
        q.finish()
        let count = try await withTimeout(seconds: 2) {
            var n = 0
            while try await q.next() != nil { n += 1 }
            return n
        }
        #expect(count == 10)
        #expect(grants.value.isEmpty)
    }

    @Test("cancelling a waiting next() throws CancellationError and calls onCancel")
    func cancelWaitingNext() async throws {
        let cancels = Locked(0)
        let q = InboundQueue<Int>(onCancel: { cancels.increment() })
        let consumer = Task { await outcome(q) }
        await pause(milliseconds: 100)  // let the consumer suspend
        consumer.cancel()
        let got = try await withTimeout(seconds: 2) { await consumer.value }
        #expect(got == .cancellation)
        #expect(cancels.value == 1)
    }

    /// A consumer whose task is already cancelled when it calls `next()` on an empty queue gets
    /// `CancellationError`; the transport must learn of it too (onCancel), or a stream whose consumer was
    /// cancelled just before it started waiting stays open at the other end.
    @Test("next() in an already-cancelled task on an empty queue throws CancellationError and calls onCancel")
    func cancelledBeforeWaiting() async throws {
        let cancels = Locked(0)
        let q = InboundQueue<Int>(onCancel: { cancels.increment() })
        let started = Signal()
        let consumer = Task {
            await started.wait()
            return await outcome(q)
        }
        consumer.cancel()
        started.fire()
        let got = try await withTimeout(seconds: 2) { await consumer.value }
        #expect(got == .cancellation)
        #expect(cancels.value == 1, "onCancel was not called for a consumer cancelled before it suspended")
    }

    @Test("a buffered part is still returned to a cancelled task")
    func cancelledTaskTakesBufferedPart() async throws {
        let q = InboundQueue<Int>()
        q.yield(5)
        let consumer = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await outcome(q)
        }
        let got = try await withTimeout(seconds: 2) { await consumer.value }
        #expect(got == .value(5))
    }

    @Test("a second concurrent consumer gets invalidState; the first still receives")
    func secondConsumerInvalidState() async throws {
        let q = InboundQueue<Int>()
        let outcomes = Locked<[NextOutcome<Int>]>([])
        let a = Task { outcomes.append(await outcome(q)) }
        let b = Task { outcomes.append(await outcome(q)) }
        // Whichever consumer came second fails at once; the other keeps waiting.
        #expect(await eventually(seconds: 2) { outcomes.value.count == 1 })
        #expect(outcomes.value == [.transport(.invalidState)])
        q.yield(9)
        try await withTimeout(seconds: 2) {
            await a.value
            await b.value
        }
        #expect(outcomes.value == [.transport(.invalidState), .value(9)])
    }
}
