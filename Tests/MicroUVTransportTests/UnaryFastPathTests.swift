import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

/// A unary handler whose behaviour each test sets: echo, wait for a release, or sleep; it records what it saw.
final class ProbeHandler: UnaryHandler, ServerHandler, @unchecked Sendable {
    enum Mode { case echo, sleep(Duration), streamStyle, large(Int) }
    let mode: Mode
    let calls = Atomic<Int>(0)
    let cancelledSeen = Atomic<Int>(0)
    let streamCalls = Atomic<Int>(0)
    let onLoopThread = Atomic<Int>(0)
    let running = Atomic<Int>(0)
    let maxRunning = Atomic<Int>(0)
    /// The server's loops, set once the harness made them.
    let loops = Mutex<[EventLoop]>([])

    init(_ mode: Mode) { self.mode = mode }

    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? {
        if case .streamStyle = mode { return nil }
        return self
    }

    nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
        calls.add(1, ordering: .relaxed)
        if loops.withLock({ $0.contains(where: { $0.inEventLoop }) }) { onLoopThread.add(1, ordering: .relaxed) }
        switch mode {
        case .echo, .streamStyle:
            return UnaryReply(message: request.message)
        case .sleep(let d):
            let now = running.add(1, ordering: .relaxed).newValue
            maxRunning.max(now, ordering: .relaxed)
            defer { running.subtract(1, ordering: .relaxed) }
            try? await Task.sleep(for: d)
            if Task.isCancelled { cancelledSeen.add(1, ordering: .relaxed) }
            return UnaryReply(message: request.message)
        case .large(let n):
            return UnaryReply(message: [UInt8](repeating: 1, count: n))
        }
    }

    func handleStream(_ stream: ServerStream) async {
        streamCalls.add(1, ordering: .relaxed)
        // Answers as a stream would: the head alone, the message in a DATA frame, then trailers.
        guard let m = try? await stream.receive() else { return }
        try? await stream.sendHead(ResponseHead(metadata: ["stage": "head"]))
        try? await stream.send(m)
        try? await stream.finish(ResponseHead(metadata: ["stage": "trailers"]))
    }
}

@Suite("Unary fast path over libuv", .serialized)
struct UnaryFastPathTests {
    let head = RequestHead(service: "svc.with.a.long.name", endpoint: "Endpoint.WithALongName")

    @Test("128 concurrent callers, half on the client's loop and half on the global pool, all echo on the unary path, run on the server's loop")
    func echoFromBothExecutors() async throws {
        let probe = ProbeHandler(.echo)
        let h = try await Harness.start(serverHandler: probe)
        probe.loops.withLock { $0 = h.serverGroup.loops }
        let loop = try h.client.loop(for: h.address)
        let client = h.client, address = h.address, head = self.head
        try await withTimeout(20) {
            try await withThrowingTaskGroup(of: Bool.self) { g in
                for i in 0..<128 {
                    let body = [UInt8](repeating: UInt8(i), count: 100 + i)
                    let work: @Sendable () async throws -> Bool = {
                        var ok = true
                        for _ in 0..<20 {
                            let r = try await client.unary(to: address, head: head, message: body)
                            ok = ok && r.status == .ok && r.message == body
                        }
                        return ok
                    }
                    if i % 2 == 0 {
                        g.addTask(executorPreference: loop) { try await work() }
                    } else {
                        g.addTask { try await work() }
                    }
                }
                for try await ok in g { #expect(ok) }
            }
        }
        #expect(probe.calls.load(ordering: .relaxed) == 128 * 20)
        #expect(probe.onLoopThread.load(ordering: .relaxed) == 128 * 20)
        #expect(probe.streamCalls.load(ordering: .relaxed) == 0)
        await h.stop()
    }

    @Test("a call past its deadline ends with deadlineExceeded, and the server's handler is cancelled")
    func deadline() async throws {
        let probe = ProbeHandler(.sleep(.seconds(120)))
        let h = try await Harness.start(serverHandler: probe)
        let start = ContinuousClock.now
        do {
            _ = try await h.client.unary(to: h.address, head: head, message: [1], deadline: Timestamp.now.advanced(by: .milliseconds(150)))
            Issue.record("the call should have failed")
        } catch {
            #expect(error.code == .deadlineExceeded)
        }
        let took = ContinuousClock.now - start
        // Not before the deadline, and not when the handler's 120 s would end: at the deadline.
        #expect(took >= .milliseconds(140) && took < .seconds(60))
        try await eventually(5, "handler cancelled") { probe.cancelledSeen.load(ordering: .relaxed) == 1 }
        await h.stop()
    }

    /// Off the loop the call takes the queued way; on the client's loop, with a ready connection, the fast path.
    @Test("cancelling the calling task cancels the call at both ends (from another thread, and on the client's loop)",
          arguments: [false, true])
    func cancellation(onLoop: Bool) async throws {
        let probe = ProbeHandler(.sleep(.seconds(10)))
        let h = try await Harness.start(serverHandler: probe)
        let client = h.client, address = h.address, head = self.head
        let loop = try client.loop(for: address)
        let calls = onLoop ? 2 : 1
        if onLoop {
            // A first call (then cancelled) makes the connection ready, so the next call from the loop takes the fast path.
            let warm = Task(executorPreference: loop) { try await client.unary(to: address, head: head, message: [1]) }
            try await eventually(5, "first call started") { probe.calls.load(ordering: .relaxed) == 1 }
            warm.cancel()
            _ = await warm.result
        }
        let call = onLoop ? Task(executorPreference: loop) { try await client.unary(to: address, head: head, message: [9]) }
                          : Task { try await client.unary(to: address, head: head, message: [9]) }
        try await eventually(5, "handler started") { probe.calls.load(ordering: .relaxed) == calls }
        call.cancel()
        do {
            _ = try await withTimeout(5) { try await call.value }
            Issue.record("the call should have been cancelled")
        } catch let e as TransportError {
            #expect(e.code == .cancelled)
        }
        try await eventually(5, "handlers cancelled") { probe.cancelledSeen.load(ordering: .relaxed) == calls }
        await h.stop()
    }

    /// The send checks a head's fields one by one only when its encoded size could hide a cut: at the edge too.
    @Test("a head with a name or metadata above 65,535 bytes fails with invalidState on both ways; one just below goes through",
          arguments: [false, true])
    func headTooLargeToEncode(onLoop: Bool) async throws {
        let probe = ProbeHandler(.echo)
        let h = try await Harness.start(serverHandler: probe)
        let client = h.client, address = h.address
        let loop = try client.loop(for: address)
        func call(_ head: RequestHead) async -> TransportError.Code? {
            let task = onLoop ? Task(executorPreference: loop) { try await client.unary(to: address, head: head, message: [1]) }
                              : Task { try await client.unary(to: address, head: head, message: [1]) }
            do {
                let r = try await task.value
                return r.status == .ok ? nil : .protocolError
            } catch let e as TransportError {
                return e.code
            } catch {
                return .protocolError
            }
        }
        #expect(await call(head) == nil)  // the connection is ready: the next calls from the loop take the fast path
        let long = String(repeating: "s", count: 65_536)
        #expect(await call(RequestHead(service: long, endpoint: "E")) == .invalidState)
        #expect(await call(RequestHead(service: "svc", endpoint: long)) == .invalidState)
        #expect(await call(RequestHead(service: "svc", endpoint: "E", metadata: ["k": long])) == .invalidState)
        // Two characters of 3 bytes at the end: cut, 65,536 bytes would back up to 65,533.
        let cutMultibyte = String(repeating: "s", count: 65_530) + "€€"
        #expect(await call(RequestHead(service: "svc", endpoint: cutMultibyte)) == .invalidState)
        #expect(await call(RequestHead(service: "svc", endpoint: String(repeating: "s", count: 65_535))) == nil)
        #expect(await call(head) == nil)
        #expect(probe.calls.load(ordering: .relaxed) == 3)
        await h.stop()
    }

    @Test("the client holds calls above the server's MAX_CONCURRENT_STREAMS back instead of overrunning it")
    func honoursPeerLimit() async throws {
        var server = UVTransportConfiguration()
        server.settings.maxConcurrentStreams = 2
        var client = UVTransportConfiguration()
        client.maxStreamsPerConnection = 16
        client.maxConnectionsPerAddress = 1
        let probe = ProbeHandler(.sleep(.milliseconds(200)))
        let h = try await Harness.start(server: server, client: client, serverHandler: probe)
        let c = h.client, a = h.address, head = self.head
        let statuses = try await withTimeout(10) {
            try await withThrowingTaskGroup(of: Status.self) { g in
                for _ in 0..<6 { g.addTask { try await c.unary(to: a, head: head, message: [1]).status } }
                var out: [Status] = []
                for try await s in g { out.append(s) }
                return out
            }
        }
        #expect(statuses.allSatisfy { $0 == .ok })
        #expect(probe.maxRunning.load(ordering: .relaxed) == 2)
        await h.stop()
    }

    @Test("a request served as a stream (head, DATA, trailers) still completes a unary call")
    func streamStyleAnswer() async throws {
        let probe = ProbeHandler(.streamStyle)
        let h = try await Harness.start(serverHandler: probe)
        let r = try await withTimeout(5) { try await h.client.unary(to: h.address, head: head, message: [4, 5, 6]) }
        #expect(r.message == [4, 5, 6])
        #expect(r.head.metadata["stage"] == "head")
        #expect(r.trailers?.metadata["stage"] == "trailers")
        #expect(probe.streamCalls.load(ordering: .relaxed) == 1)
        await h.stop()
    }

    @Test("a reply above the peer's maximum frame size becomes an error status, not a broken connection")
    func replyTooLarge() async throws {
        var client = UVTransportConfiguration()
        client.settings.maxFrameSize = 16 * 1024
        let h = try await Harness.start(client: client, serverHandler: ProbeHandler(.large(64 * 1024)))
        let r = try await withTimeout(5) { try await h.client.unary(to: h.address, head: head, message: [1]) }
        guard case .error(let code, _) = r.status else { Issue.record("expected an error, got \(r.status)"); return }
        #expect(code == 8)
        let again = try await withTimeout(5) { try await h.client.unary(to: h.address, head: head, message: [1]) }
        #expect(again.message == nil)
        #expect(await h.client.poolStats(for: h.address)?.dials == 1)
        await h.stop()
    }

    @Test("when the server goes away mid-call, every waiting caller gets an error")
    func serverGone() async throws {
        let probe = ProbeHandler(.sleep(.seconds(30)))
        let h = try await Harness.start(serverHandler: probe)
        let c = h.client, a = h.address, head = self.head
        let calls = (0..<10).map { _ in Task { try await c.unary(to: a, head: head, message: [1]) } }
        try await eventually(5, "handlers started") { probe.calls.load(ordering: .relaxed) == 10 }
        await h.server.drain(gracePeriod: .milliseconds(50))
        for call in calls {
            do {
                _ = try await withTimeout(5) { try await call.value }
                Issue.record("expected an error")
            } catch let e as TransportError {
                #expect(e.code == .connectionClosed || e.code == .cancelled)
            }
        }
        try await eventually(5, "handlers cancelled") { probe.cancelledSeen.load(ordering: .relaxed) == 10 }
        await h.stop()
    }

    @Test("a drain lets in-flight unary calls finish within the grace period")
    func drainKeepsInFlight() async throws {
        let probe = ProbeHandler(.sleep(.milliseconds(300)))
        let h = try await Harness.start(serverHandler: probe)
        let c = h.client, a = h.address, head = self.head
        let calls = (0..<8).map { _ in Task { try await c.unary(to: a, head: head, message: [7]) } }
        try await eventually(5, "handlers started") { probe.calls.load(ordering: .relaxed) == 8 }
        await h.server.drain(gracePeriod: .seconds(5))
        for call in calls {
            let r = try await withTimeout(5) { try await call.value }
            #expect(r.status == .ok && r.message == [7])
        }
        #expect(probe.cancelledSeen.load(ordering: .relaxed) == 0)
        await h.stop()
    }
}
