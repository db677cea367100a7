import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

@Suite("UV transport over loopback")
struct UVTransportTests {
    @Test func unaryEcho() async throws {
        let h = try await Harness.start()
        let r = try await withTimeout(10) {
            try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: Array("hello".utf8))
        }
        #expect(r.status == .ok)
        #expect(r.message == Array("hello".utf8))
        let empty = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [])
        #expect(empty.message == [])
        await h.stop()
    }

    @Test func headAndMetadataTravel() async throws {
        let h = try await Harness.start { stream in
            var md = Metadata()
            md.append("seen-service", stream.head.service)
            md.append("seen-endpoint", stream.head.endpoint)
            md.append("seen-timeout", String(stream.head.timeoutMicroseconds))
            md.append("seen-attempt", String(stream.head.attempt))
            md.append("seen-x", stream.head.metadata["X-Trace"] ?? "none")
            _ = try? await stream.receive()
            try? await stream.respond([1, 2, 3], head: ResponseHead(status: .ok, metadata: md))
        }
        let head = RequestHead(service: "greeter", endpoint: "Say.Hello", contentType: "application/json",
                               timeoutMicroseconds: 1_500_000, attempt: 2, metadata: ["x-trace": "abc"])
        let r = try await withTimeout(10) { try await h.client.unary(to: h.address, head: head, message: [0]) }
        #expect(r.head.metadata["seen-service"] == "greeter")
        #expect(r.head.metadata["seen-endpoint"] == "Say.Hello")
        #expect(r.head.metadata["seen-timeout"] == "1500000")
        #expect(r.head.metadata["seen-attempt"] == "2")
        #expect(r.head.metadata["seen-x"] == "abc")
        #expect(r.message == [1, 2, 3])
        await h.stop()
    }

    @Test func errorAndNackStatusesArriveAsResponses() async throws {
        let h = try await Harness.start { stream in
            _ = try? await stream.receive()
            if stream.head.endpoint == "fail" {
                try? await stream.finish(ResponseHead(status: .error(code: 42, message: "nope")))
            } else {
                try? await stream.finish(ResponseHead(status: .nack(restartable: true, code: 7, message: "busy")))
            }
        }
        let a = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "fail"), message: []) }
        #expect(a.status == .error(code: 42, message: "nope"))
        #expect(a.message == nil)
        let b = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "busy"), message: []) }
        #expect(b.status == .nack(restartable: true, code: 7, message: "busy"))
        await h.stop()
    }

    @Test func handlerReturningWithoutAnswerEndsWithError() async throws {
        let h = try await Harness.start { _ in }
        let r = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        guard case .error = r.status else {
            Issue.record("expected an error status, got \(r.status)")
            return
        }
        await h.stop()
    }

    @Test func bidirectionalStreamManyMessages() async throws {
        let h = try await Harness.start { stream in
            var n = 0
            while let m = try? await stream.receive() {
                n += 1
                try? await stream.send(m.reversed())
            }
            try? await stream.finish(ResponseHead(status: .ok, metadata: ["count": String(n)]))
        }
        try await withTimeout(20) {
            let s = try await h.client.openStream(to: h.address, head: RequestHead(service: "s", endpoint: "bidi"),
                                                  firstMessage: nil, endOfInput: false, deadline: nil)
            var got = 0
            for i in 0..<1000 {
                let msg = [UInt8(i & 0xFF), UInt8(i >> 8), 9]
                try await s.send(msg)
                loop: while let part = try await s.receive() {
                    switch part {
                    case .head: continue
                    case .message(let m):
                        #expect(m == msg.reversed())
                        got += 1
                        break loop
                    case .end: Issue.record("early end"); return
                    }
                }
            }
            try await s.finish()
            let (_, rest, trailers) = try await s.collect()
            #expect(rest.isEmpty)
            #expect(got == 1000)
            #expect(trailers?.metadata["count"] == "1000")
        }
        await h.stop()
    }

    @Test func largeMessagesBothWays() async throws {
        let h = try await Harness.start()
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let r = try await withTimeout(20) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: big) }
        #expect(r.message == big)
        await h.stop()
    }

    @Test func messageAboveMaxFrameSizeIsRefusedLocally() async throws {
        var serverConfig = UVTransportConfiguration()
        serverConfig.settings.maxFrameSize = 64 << 10
        let h = try await Harness.start(server: serverConfig)
        // The first call learns the server's SETTINGS.
        _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [1]) }
        await #expect(throws: TransportError.self) {
            _ = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [UInt8](repeating: 0, count: 100 << 10))
        }
        let ok = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [2])
        #expect(ok.message == [2])
        await h.stop()
    }

    @Test func thousandConcurrentStreamsOnOneConnection() async throws {
        let arrived = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionsPerAddress = 1
        clientConfig.maxStreamsPerConnection = 2000
        let h = try await Harness.start(client: clientConfig) { stream in
            let m = (try? await stream.receive()) ?? nil
            let n = arrived.add(1, ordering: .relaxed).newValue
            _ = peak.max(n, ordering: .relaxed)
            // Hold every call until all 1,000 are open at once.
            while arrived.load(ordering: .relaxed) < 1000 { try? await Task.sleep(for: .milliseconds(2)) }
            try? await stream.respond(m ?? [])
        }
        let ok = try await withTimeout(30) {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        let msg = Array("call \(i)".utf8)
                        let r = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: msg)
                        return r.message == msg
                    }
                }
                var ok = 0
                for try await r in group where r { ok += 1 }
                return ok
            }
        }
        #expect(ok == 1000)
        #expect(peak.load(ordering: .relaxed) == 1000)
        let stats = await h.client.poolStats(for: h.address)
        #expect(stats?.dials == 1, "all streams share one connection")
        await h.stop()
    }

    @Test func serverRefusesStreamsAboveItsLimitWithNack() async throws {
        var serverConfig = UVTransportConfiguration()
        serverConfig.settings.maxConcurrentStreams = 2
        let release = Atomic<Bool>(false)
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionsPerAddress = 1
        let h = try await Harness.start(server: serverConfig, client: clientConfig) { stream in
            _ = try? await stream.receive()
            while !release.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(5)) }
            try? await stream.respond([1])
        }
        // Before SETTINGS arrive the client may exceed the limit; afterwards the pool respects it. Either way
        // every call ends: OK, or a restartable NACK from the server.
        let statuses = try await withTimeout(20) {
            try await withThrowingTaskGroup(of: Status.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [0]).status }
                }
                try await Task.sleep(for: .milliseconds(200))
                release.store(true, ordering: .relaxed)
                var all: [Status] = []
                for try await s in group { all.append(s) }
                return all
            }
        }
        #expect(statuses.count == 6)
        for s in statuses {
            switch s {
            case .ok: break
            case .nack(let restartable, let code, _): #expect(restartable && StatusCode(rawValue: code) == .resourceExhausted)
            default: Issue.record("unexpected status \(s)")
            }
        }
        await h.stop()
    }
}
