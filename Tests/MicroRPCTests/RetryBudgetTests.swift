import MicroRPC
import Testing

@Suite("RetryBudget")
struct RetryBudgetTests {
    @Test("retries are capped at the ratio of calls counted, including calls counted concurrently")
    func ratio() async {
        let budget = RetryBudget(RetryBudget.Configuration(ratio: 0.5, minPerSecond: 0, window: .seconds(10)))
        #expect(!budget.tryRetry(), "no calls, no floor: no retry")
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { for _ in 0..<250 { budget.recordCall() } }
            }
        }
        var granted = 0
        while budget.tryRetry() { granted += 1 }
        // A call racing a slot change may land in the next slot; within one window every call still counts.
        #expect(granted == 500)
        #expect(budget.retriesInWindow == 500)
        budget.recordCall()
        budget.recordCall()
        #expect(budget.tryRetry(), "two more calls: one more retry")
        #expect(!budget.tryRetry())
    }

    @Test("the floor allows retries without traffic")
    func floor() {
        let budget = RetryBudget(RetryBudget.Configuration(ratio: 0, minPerSecond: 2, window: .seconds(5)))
        var granted = 0
        while budget.tryRetry() { granted += 1 }
        #expect(granted == 10)
    }
}
