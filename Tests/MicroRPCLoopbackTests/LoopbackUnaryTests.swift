import MicroCore
import MicroEventLoop
import MicroFraming
import MicroRPC
import MicroUVTransport
import Testing

/// Unary calls over loopback: from the client transport's own loop and from the global pool.
@Suite("Unary calls over loopback")
struct LoopbackUnaryTests {
    @Test("the stock content types are the interner's well-known names (their copies cost no reference counting)")
    func contentTypesAreWellKnown() {
        for type in [ContentType.raw, ContentType.json, ContentType.protobuf] {
            #expect(StringInterner.wellKnown.contains(type))
        }
    }

    @Test("raw echo over loopback, from the client's loop and from the global pool")
    func rawEcho() async throws {
        let s = try await RunningServer.start { $0.handle("Echo.Call") { req, _ in Response(body: req.body, metadata: ["seen": req.endpoint]) } }
        let c = RunningClient.start()
        let address = s.address
        let client = c.client
        let loop = try c.transport.loop(for: address)
        let fromLoop = try await Task(executorPreference: loop) {
            try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1, 2, 3]), options: CallOptions(address: address))
        }.value
        #expect(fromLoop.body == [1, 2, 3])
        #expect(fromLoop.metadata["seen"] == "Echo.Call")
        let fromPool = try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: Array(repeating: 7, count: 100_000)), options: CallOptions(address: address))
        #expect(fromPool.body.count == 100_000)
        await c.stop()
        await s.stop()
    }
}
