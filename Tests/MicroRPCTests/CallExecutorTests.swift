import MicroRPC
import MicroCore
import MicroSelector
import Testing

/// One client path: unary calls and streams are selected, attempted, marked and retried by the same executor,
/// with one retry-safety rule and one retry budget.
@Suite("Call executor")
struct CallExecutorTests {
    static func echoServer() async throws -> RunningServer {
        try await RunningServer.start { server in
            server.handle("Echo.Call") { r, _ in Response(body: r.body) }
            server.handleStream("Echo.Stream") { call in
                while let m = try await call.receive() { try await call.send(m) }
            }
        }
    }

    @Test("a call and a stream whose first node refuses the connection both land on the next node; marks alike")
    func sameRetryPath() async throws {
        let good = try await Self.echoServer()
        let dead = "127.0.0.1:\(freePort())"
        for kind in ["call", "stream"] {
            let selector = OrderedSelector([dead, good.address])
            let c = RunningClient.start(selector: selector) { $0.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1)) }
            if kind == "call" {
                let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]), options: CallOptions(retries: 2))
                #expect(r.body == [1])
            } else {
                let s = try await c.client.stream(service: "svc", endpoint: "Echo.Stream", options: CallOptions(retries: 2))
                try await s.send([2])
                #expect(try await s.receive() == [2])
                try await s.closeSend()
                #expect(try await s.receive() == nil)
            }
            #expect(selector.failures == ["n0"], "\(kind): the dead node is marked failed")
            #expect(selector.successes == ["n1"], "\(kind): the good node is marked")
            await c.stop()
        }
        await good.stop()
    }

    @Test("no retries left, or no retry budget: a call and a stream both fail at the first node, unavailable and retry-safe")
    func sameLimits() async throws {
        let good = try await Self.echoServer()
        let dead = "127.0.0.1:\(freePort())"
        let budgets: [(String, CallOptions, RetryBudget.Configuration)] = [
            ("retries 0", CallOptions(retries: 0), RetryBudget.Configuration()),
            ("empty budget", CallOptions(retries: 3), RetryBudget.Configuration(ratio: 0, minPerSecond: 0)),
        ]
        for (what, options, budget) in budgets {
            for kind in ["call", "stream"] {
                let selector = OrderedSelector([dead, good.address])
                let c = RunningClient.start(selector: selector) { $0.retryBudget = budget }
                do {
                    if kind == "call" {
                        _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]), options: options)
                    } else {
                        _ = try await c.client.stream(service: "svc", endpoint: "Echo.Stream", options: options)
                    }
                    Issue.record("\(what), \(kind): expected a failure")
                } catch let e as RPCError {
                    #expect(e.code == .unavailable, "\(what), \(kind): \(e)")
                    #expect(e.workNotStarted, "\(what), \(kind)")
                }
                #expect(selector.successes.isEmpty, "\(what), \(kind): the good node was never tried")
                await c.stop()
            }
        }
        await good.stop()
    }

    @Test("a deadline that passes while backing off ends a call and a stream alike with deadlineExceeded")
    func deadlineDuringBackoff() async throws {
        let dead = "127.0.0.1:\(freePort())"
        let selector = OrderedSelector([dead])
        let c = RunningClient.start(selector: selector) { $0.backoff = Backoff(base: .seconds(5), maximum: .seconds(5), jitter: 0) }
        let options = CallOptions(timeout: .milliseconds(100), retries: 5)
        for kind in ["call", "stream"] {
            do {
                if kind == "call" {
                    _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: []), options: options)
                } else {
                    _ = try await c.client.stream(service: "svc", endpoint: "Echo.Stream", options: options)
                }
                Issue.record("\(kind): expected a failure")
            } catch let e as RPCError {
                #expect(e.code == .deadlineExceeded, "\(kind): \(e)")
                #expect(e.message.contains("after 1 attempt"), "\(kind): \(e)")
            }
        }
        await c.stop()
    }
}
