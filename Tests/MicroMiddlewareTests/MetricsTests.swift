import MetricsTestKit
import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Testing

@Suite("Metrics middleware")
struct MetricsTests {
    static let dimensions = [("service", "svc"), ("endpoint", "Echo.Call")]

    static func errorDimensions(_ code: StatusCode) -> [(String, String)] {
        dimensions + [("code", code.name)]
    }

    /// Echoes, or fails with notFound when the body is "fail".
    static func server(_ metrics: TestMetrics) async throws -> RunningServer {
        try await RunningServer.start(configure: { $0.use { MetricsMiddleware(factory: metrics) } }) { server in
            server.handle("Echo.Call") { r, _ in
                if text(r.body) == "fail" { throw RPCError(.notFound, "no such thing") }
                return Response(body: r.body)
            }
        }
    }

    @Test("3 good calls and 1 failing call: calls, errors by code, timers and in-flight meters on both sides")
    func callsAndErrors() async throws {
        let metrics = TestMetrics()
        let s = try await Self.server(metrics)
        let c = RunningClient.start { $0.use { MetricsMiddleware(factory: metrics) } }
        let options = CallOptions(address: s.address)
        for _ in 0..<3 {
            _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: bytes("ok")), options: options)
        }
        #expect(await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: bytes("fail")), options).rpcError?.code == .notFound)

        for side in ["server", "client"] {
            #expect(try metrics.expectCounter("micro_\(side)_calls_total", Self.dimensions).totalValue == 4, "\(side)")
            #expect(try metrics.expectCounter("micro_\(side)_errors_total", Self.errorDimensions(.notFound)).totalValue == 1, "\(side)")
            #expect(try metrics.expectTimer("micro_\(side)_call_duration", Self.dimensions).values.count == 4, "\(side)")
            let inFlight = try metrics.expectMeter("micro_\(side)_in_flight", Self.dimensions)
            #expect(inFlight.lastValue == 0, "\(side): every call ended")
            #expect(inFlight.values.max() == 1, "\(side): one call at a time")
            // Only the code that occurred has a counter.
            #expect(throws: (any Error).self) { try metrics.expectCounter("micro_\(side)_errors_total", Self.errorDimensions(.internalError)) }
        }
        #expect(try metrics.expectTimer("micro_client_attempt_duration", Self.dimensions).values.count == 4)
        #expect(try metrics.expectCounter("micro_client_retries_total", Self.dimensions).totalValue == 0)
        #expect(try metrics.expectCounter("micro_client_nacks_total", Self.dimensions).totalValue == 0)
        #expect(try metrics.expectCounter("micro_server_nacks_total", Self.dimensions).totalValue == 0)
        await c.stop()
        await s.stop()
    }

    @Test("a retry counts in micro_client_retries_total, its attempts in the attempt timer, the call once")
    func retries() async throws {
        let metrics = TestMetrics()
        let s = try await Self.server(TestMetrics())
        let selector = OrderedSelector([deadAddress(), s.address])
        let c = RunningClient.start(selector: selector) { config in
            config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1))
            config.use { MetricsMiddleware(factory: metrics) }
        }
        _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: bytes("ok")), options: CallOptions(retries: 2))
        #expect(try metrics.expectCounter("micro_client_retries_total", Self.dimensions).totalValue == 1)
        #expect(try metrics.expectCounter("micro_client_hedges_total", Self.dimensions).totalValue == 0)
        #expect(try metrics.expectTimer("micro_client_attempt_duration", Self.dimensions).values.count == 2)
        #expect(try metrics.expectCounter("micro_client_calls_total", Self.dimensions).totalValue == 1)
        #expect(try metrics.expectTimer("micro_client_call_duration", Self.dimensions).values.count == 1)
        // A connection refused is not a NACK the server sent.
        #expect(try metrics.expectCounter("micro_client_nacks_total", Self.dimensions).totalValue == 0)
        await c.stop()
        await s.stop()
    }

    @Test("a refusal by a server middleware counts as a NACK sent (server) and received (client), with its code")
    func nacks() async throws {
        let metrics = TestMetrics()
        let s = try await RunningServer.start(configure: { config in
            config.use {
                MetricsMiddleware(factory: metrics)
                RefusingServerMiddleware()
            }
        }) { server in
            server.handle("Echo.Call") { r, _ in Response(body: r.body) }
        }
        let c = RunningClient.start { $0.use { MetricsMiddleware(factory: metrics) } }
        let e = try #require(await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: []),
                                           CallOptions(retries: 0, address: s.address)).rpcError)
        #expect(e.workNotStarted)
        #expect(try metrics.expectCounter("micro_server_nacks_total", Self.dimensions).totalValue == 1)
        #expect(try metrics.expectCounter("micro_client_nacks_total", Self.dimensions).totalValue == 1)
        #expect(try metrics.expectCounter("micro_server_errors_total", Self.errorDimensions(.resourceExhausted)).totalValue == 1)
        #expect(try metrics.expectCounter("micro_client_errors_total", Self.errorDimensions(.resourceExhausted)).totalValue == 1)
        #expect(try metrics.expectMeter("micro_server_in_flight", Self.dimensions).lastValue == 0)
        await c.stop()
        await s.stop()
    }
}
