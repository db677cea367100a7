import MicroCore
import MicroRPC
import Testing

/// The stream's next message, failing after `seconds`.
func receiveWithin(_ seconds: Double, _ stream: ClientCallStream) async throws -> [UInt8]? {
    try await withTimeout(seconds) { try await stream.receive() }
}

@Suite("Streaming calls", .serialized)
struct StreamingTests {
    @Test("bidirectional: 2,000 messages each way, echoed in order")
    func bidirectional() async throws {
        let s = try await RunningServer.start { server in
            server.handleStream("Echo.Stream") { stream in
                while let m = try await stream.receive() { try await stream.send(m) }
            }
        }
        let c = RunningClient.start()
        let stream = try await c.client.stream(service: "svc", endpoint: "Echo.Stream", options: CallOptions(address: s.address))
        let sender = Task {
            for i in 0..<2000 { try await stream.send(bytes("m\(i)")) }
            try await stream.closeSend()
        }
        var received: [String] = []
        while let m = try await receiveWithin(10, stream) { received.append(text(m)) }
        try await sender.value
        #expect(received.count == 2000)
        #expect(received.first == "m0" && received.last == "m1999")
        #expect(received == (0..<2000).map { "m\($0)" })
        await c.stop()
        await s.stop()
    }

    @Test("large messages in both directions go through flow control: 24 x 1 MiB")
    func large() async throws {
        let s = try await RunningServer.start { server in
            server.handleStream("Sum.Stream") { stream in
                var total = 0
                while let m = try await stream.receive() {
                    total += m.count
                    try await stream.send(Array(repeating: UInt8(truncatingIfNeeded: total), count: 1 << 20))
                }
            }
        }
        let c = RunningClient.start()
        let stream = try await c.client.stream(service: "svc", endpoint: "Sum.Stream", options: CallOptions(address: s.address))
        let sender = Task {
            for i in 0..<24 { try await stream.send(Array(repeating: UInt8(i), count: 1 << 20)) }
            try await stream.closeSend()
        }
        var got = 0
        while let m = try await receiveWithin(20, stream) {
            #expect(m.count == 1 << 20)
            got += 1
        }
        try await sender.value
        #expect(got == 24)
        await c.stop()
        await s.stop()
    }

    @Test("server streaming with typed messages, and client streaming answered at the end")
    func oneSided() async throws {
        let s = try await RunningServer.start { server in
            server.handleStream("Count.Up") { stream in
                guard let n = try await stream.receive(as: Greeting.self) else { return }
                for i in 0..<n.count { try await stream.send(value: Greeting(name: n.name, count: i)) }
            }
            server.handleStream("Count.All") { stream in
                var n = 0
                while try await stream.receive() != nil { n += 1 }
                try await stream.send(bytes("\(n)"))
            }
        }
        let c = RunningClient.start()
        let up = try await c.client.stream(service: "svc", endpoint: "Count.Up", contentType: ContentType.json, options: CallOptions(address: s.address))
        try await up.send(value: Greeting(name: "n", count: 500))
        try await up.closeSend()
        var seen: [Int] = []
        while let g = try await up.receive(as: Greeting.self) { seen.append(g.count) }
        #expect(seen == Array(0..<500))
        let all = try await c.client.stream(service: "svc", endpoint: "Count.All", options: CallOptions(address: s.address))
        for _ in 0..<300 { try await all.send([1]) }
        try await all.closeSend()
        #expect(try await all.receive().map(text) == "300")
        #expect(try await all.receive() == nil)
        await c.stop()
        await s.stop()
    }

    @Test("a handler's error ends the stream with its status; cancelling the stream reaches the handler")
    func errorsAndCancel() async throws {
        let cancelled = Counter()
        let s = try await RunningServer.start { server in
            server.handleStream("Fail.Stream") { stream in
                _ = try await stream.receive()
                throw RPCError(.permissionDenied, "no streams for you")
            }
            server.handleStream("Wait.Stream") { stream in
                do {
                    _ = try await stream.receive()
                    try await Task.sleep(for: .seconds(20))
                } catch {
                    cancelled.add()
                    throw error
                }
            }
        }
        let c = RunningClient.start()
        let failing = try await c.client.stream(service: "svc", endpoint: "Fail.Stream", options: CallOptions(address: s.address))
        try await failing.send([1])
        do {
            _ = try await withTimeout(5) { try await failing.receive() }
            Issue.record("expected the handler's error")
        } catch let e as RPCError {
            #expect(e.code == .permissionDenied)
            #expect(e.message == "no streams for you")
        }
        let waiting = try await c.client.stream(service: "svc", endpoint: "Wait.Stream", options: CallOptions(address: s.address))
        try await waiting.send([1])
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        try await eventually(5, "handler cancelled") { cancelled.count == 1 }
        await c.stop()
        await s.stop()
    }

    @Test("a stream past its deadline ends with deadlineExceeded")
    func deadline() async throws {
        let s = try await RunningServer.start { server in
            server.handleStream("Silent.Stream") { stream in
                while try await stream.receive() != nil {}
            }
        }
        let c = RunningClient.start()
        let stream = try await c.client.stream(service: "svc", endpoint: "Silent.Stream", options: CallOptions(timeout: .milliseconds(150), address: s.address))
        do {
            _ = try await withTimeout(5) { try await stream.receive() }
            Issue.record("expected deadlineExceeded")
        } catch let e as RPCError {
            #expect(e.code == .deadlineExceeded)
        }
        await c.stop()
        await s.stop()
    }
}
