import MicroCoreTestSupport
import MicroInMemory
import MicroCore
import MicroFraming
import Testing

/// A server and a client on a network of their own.
struct Harness {
    let network = InMemoryNetwork()
    let server: InMemoryServer
    let client: InMemoryTransport
    let address = "svc"
    let head = RequestHead(service: "test.Service", endpoint: "Call", metadata: ["k": "v"])

    init(initialWindow: Int = 1 << 20, _ handler: @escaping @Sendable (ServerStream) async -> Void) async throws {
        server = InMemoryServer(network: network, address: address, initialWindow: initialWindow)
        client = InMemoryTransport(network: network)
        try await server.serve(handler)
    }

    func open(firstMessage: [UInt8]? = nil, endOfInput: Bool = false) async throws -> ClientStream {
        try await client.openStream(to: address, head: head, firstMessage: firstMessage, endOfInput: endOfInput, deadline: nil)
    }

    func unary(_ message: [UInt8]) async throws -> UnaryResponse {
        try await client.unary(to: address, head: head, message: message)
    }
}

/// How a handler's receive ended and whether its task was cancelled afterwards.
struct HandlerReport: Sendable, Equatable {
    var receiveError: TransportError.Code?
    var taskCancelled: Bool
}

/// Waits on `receive()` until it throws, then reports whether the handler's task is (or becomes, within a
/// second) cancelled.
func receiveUntilFailure(_ stream: ServerStream) async -> HandlerReport {
    var code: TransportError.Code?
    do {
        while try await stream.receive() != nil {}
    } catch {
        code = transportCode(error) ?? .invalidState
    }
    // Sleeping is interrupted by cancellation: a cancelled task does not sleep the full minute (the tests wait for
    // the report far less long).
    try? await Task.sleep(for: .seconds(60))
    return HandlerReport(receiveError: code, taskCancelled: Task.isCancelled)
}

@Suite("InMemoryTransport")
struct InMemoryTransportTests {
    // MARK: call shapes

    @Test("unary echo")
    func unaryEcho() async throws {
        let seen = Locked<[RequestHead]>([])
        let afterMessage = Locked<[[UInt8]?]>([])
        let h = try await Harness { stream in
            seen.append(stream.head)
            guard let m = try? await stream.receive() else { return }
            afterMessage.append(try? await stream.receive())  // the client's end
            try? await stream.respond(Array(m.reversed()), head: ResponseHead(metadata: ["echo": "yes"]))
        }
        let response = try await withTimeout(seconds: 5) { try await h.unary([1, 2, 3]) }
        #expect(response.message == [3, 2, 1])
        #expect(response.status == .ok)
        #expect(response.head.metadata["echo"] == "yes")
        #expect(response.trailers?.status == .ok)
        #expect(seen.value == [h.head])
        #expect(afterMessage.value == [nil], "the client's end follows the unary message")
        #expect(await eventually { h.server.inFlightCount == 0 })
    }

    @Test("server streaming: a head, many messages in order, then an end with trailers")
    func serverStreaming() async throws {
        let h = try await Harness(initialWindow: 4096) { stream in
            guard let m = try? await stream.receive(), let n = UInt32(bytes: m) else { return }
            do {
                try await stream.sendHead(ResponseHead(metadata: ["stream": "start"]))
                for i in 0..<n { try await stream.send(i.bytes + [UInt8](repeating: 7, count: 200)) }
                try await stream.finish(ResponseHead(status: .ok, metadata: ["count": "\(n)"]))
            } catch {}
        }
        let parts = try await withTimeout(seconds: 10) {
            let stream = try await h.open(firstMessage: UInt32(500).bytes, endOfInput: true)
            var parts: [ClientInboundPart] = []
            while let p = try await stream.receive() { parts.append(p) }
            return parts
        }
        #expect(parts.count == 502)
        #expect(parts.first == .head(ResponseHead(metadata: ["stream": "start"])))
        #expect(parts.last == .end(ResponseHead(status: .ok, metadata: ["count": "500"])))
        let ids = parts.dropFirst().dropLast().compactMap { p -> UInt32? in
            if case .message(let m) = p, m.count == 204 { return UInt32(bytes: Array(m.prefix(4))) }
            return nil
        }
        #expect(ids == Array(0..<500))
    }

    @Test("client streaming: many messages, then one response")
    func clientStreaming() async throws {
        let h = try await Harness(initialWindow: 1024) { stream in
            var count = 0
            var sum = 0
            do {
                while let m = try await stream.receive() {
                    count += 1
                    sum += m.reduce(0) { $0 + Int($1) }
                }
                try await stream.respond(Array("\(count):\(sum)".utf8))
            } catch {}
        }
        let (response, sendAfterFinish) = try await withTimeout(seconds: 10) {
            let stream = try await h.open()
            for i in 0..<200 { try await stream.send([UInt8](repeating: UInt8(i % 7), count: 100)) }
            try await stream.finish()
            let afterFinish: TransportError.Code?
            do throws(TransportError) { try await stream.send([1]); afterFinish = nil } catch { afterFinish = error.code }
            return (try await stream.collect(), afterFinish)
        }
        let expectedSum = (0..<200).reduce(0) { $0 + ($1 % 7) * 100 }
        #expect(response.messages == [Array("200:\(expectedSum)".utf8)])
        #expect(response.head.status == .ok)
        #expect(response.trailers?.status == .ok)
        #expect(sendAfterFinish == .invalidState)
    }

    @Test("bidirectional ping-pong of 1,000 messages")
    func bidirectionalPingPong() async throws {
        let h = try await Harness(initialWindow: 64) { stream in
            do {
                while let m = try await stream.receive() {
                    guard let n = UInt32(bytes: m) else { break }
                    try await stream.send((n + 1).bytes)
                }
                try await stream.finish(ResponseHead(metadata: ["done": "1"]))
            } catch {}
        }
        let (pongs, end) = try await withTimeout(seconds: 30) {
            let stream = try await h.open()
            var pongs = 0
            for i in UInt32(0)..<1000 {
                try await stream.send(i.bytes)
                var reply: [UInt8]?
                while reply == nil, let part = try await stream.receive() {
                    switch part {
                    case .head: continue
                    case .message(let m): reply = m
                    case .end: throw TransportError(.protocolError, "ended early at \(i)")
                    }
                }
                if reply.flatMap(UInt32.init(bytes:)) == i + 1 { pongs += 1 }
            }
            try await stream.finish()
            let end = try await stream.receive()
            #expect(try await stream.receive() == nil)
            return (pongs, end)
        }
        #expect(pongs == 1000)
        #expect(end == .end(ResponseHead(metadata: ["done": "1"])))
    }

    // MARK: statuses

    @Test("ERROR and NACK statuses arrive as a ResponseHead, not as a thrown error", arguments: [
        Status.error(code: 7, message: "boom"),
        Status.nack(restartable: true, code: 3, message: "busy"),
        Status.nack(restartable: false, code: 4, message: "no"),
    ])
    func errorStatusTravelsAsHead(status: Status) async throws {
        let h = try await Harness { stream in
            _ = try? await stream.receive()
            try? await stream.finish(ResponseHead(status: status, metadata: ["why": "test"]))
        }
        let response = try await withTimeout(seconds: 5) { try await h.unary([0]) }
        #expect(response.status == status)
        #expect(response.head.status == status)
        #expect(response.head.metadata["why"] == "test")
        #expect(response.message == nil)

        // With a message and a head carrying the status too.
        let h2 = try await Harness { stream in
            _ = try? await stream.receive()
            try? await stream.respond([9], head: ResponseHead(status: status))
        }
        let r2 = try await withTimeout(seconds: 5) { try await h2.unary([0]) }
        #expect(r2.status == status)
        #expect(r2.message == [9])
    }

    @Test("a handler returning without ending the stream yields an ERROR end")
    func handlerReturnsWithoutEnding() async throws {
        let h = try await Harness { stream in
            _ = try? await stream.receive()
        }
        let response = try await withTimeout(seconds: 5) { try await h.unary([1]) }
        guard case .error = response.status else {
            Issue.record("expected an ERROR status, got \(response.status)")
            return
        }
        #expect(response.message == nil)

        // Also after a head and a message were sent.
        let h2 = try await Harness { stream in
            try? await stream.send([5])
        }
        let parts = try await withTimeout(seconds: 5) {
            let s = try await h2.open(endOfInput: true)
            var parts: [ClientInboundPart] = []
            while let p = try await s.receive() { parts.append(p) }
            return parts
        }
        #expect(parts.count == 3)
        #expect(parts.first == .head(ResponseHead()))
        #expect(parts.dropFirst().first == .message([5]))
        if case .end(let t)? = parts.last, case .error? = t?.status {} else {
            Issue.record("expected an ERROR end, got \(String(describing: parts.last))")
        }
        #expect(await eventually { h.server.inFlightCount == 0 && h2.server.inFlightCount == 0 })
    }

    @Test("opening a stream to an unknown address throws connectFailed, which is retry-safe")
    func unknownAddress() async throws {
        let h = try await Harness { _ in }
        let error = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 5) {
                try await h.client.openStream(to: "nowhere", head: h.head, firstMessage: nil, endOfInput: true, deadline: nil)
            }
        }
        #expect(error?.code == .connectFailed)
        #expect(error?.isRetrySafe == true)

        let unaryError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 5) {
                try await h.client.unary(to: "elsewhere", head: h.head, message: [1])
            }
        }
        #expect(unaryError?.code == .connectFailed)
        // Another network does not see this server either.
        let other = InMemoryTransport(network: InMemoryNetwork())
        let otherError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 5) {
                try await other.openStream(to: h.address, head: h.head, firstMessage: nil, endOfInput: true, deadline: nil)
            }
        }
        #expect(otherError?.code == .connectFailed)
    }

    // MARK: flow control

    @Test("a sender is suspended once the window is used and resumes when the server reads")
    func flowControl() async throws {
        let go = Signal()
        let received = Locked<[[UInt8]]>([])
        let h = try await Harness(initialWindow: 1024) { stream in
            await go.wait()
            do {
                while let m = try await stream.receive() { received.append(m) }
                try await stream.respond(Array("\(received.value.count)".utf8))
            } catch {}
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open() }
        let completed = Locked(0)
        let sender = Task {
            for i in 0..<100 {
                try await stream.send([UInt8](repeating: UInt8(i), count: 512))
                completed.increment()
            }
            try await stream.finish()
        }
        await pause(milliseconds: 300)
        let whileBlocked = completed.value
        #expect(whileBlocked >= 1)
        #expect(whileBlocked <= 3, "\(whileBlocked) sends of 512 bytes completed with a 1,024-byte window")
        #expect(!sender.isCancelled)

        go.fire()
        do {
            try await withTimeout(seconds: 10, "the sends after the server started reading") { try await sender.value }
        } catch {
            sender.cancel()
            stream.cancel()
            throw error
        }
        #expect(completed.value == 100)
        let response = try await withTimeout(seconds: 5) { try await stream.collect() }
        #expect(response.messages == [Array("100".utf8)])
        #expect(received.value.count == 100)
        #expect(received.value.enumerated().allSatisfy { i, m in m == [UInt8](repeating: UInt8(i), count: 512) })
    }

    @Test("a server sending faster than the client reads is held back by the client's window")
    func serverToClientFlowControl() async throws {
        let sent = Locked(0)
        let h = try await Harness(initialWindow: 1024) { stream in
            do {
                for _ in 0..<50 {
                    try await stream.send([UInt8](repeating: 1, count: 512))
                    sent.increment()
                }
                try await stream.finish()
            } catch {}
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open(endOfInput: true) }
        await pause(milliseconds: 300)
        #expect(sent.value <= 3, "\(sent.value) messages of 512 bytes sent into a 1,024-byte window")
        let messages = try await withTimeout(seconds: 10) { try await stream.collect().messages }
        #expect(messages.count == 50)
        #expect(sent.value == 50)
    }

    // MARK: cancellation

    @Test("client cancel(): the server's receive throws cancelled and the handler's task is cancelled")
    func clientCancel() async throws {
        let started = Signal()
        let report = Locked<HandlerReport?>(nil)
        let h = try await Harness { stream in
            started.fire()
            let r = await receiveUntilFailure(stream)
            report.update { $0 = r }
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open(firstMessage: [1]) }
        try await withTimeout(seconds: 5) { await started.wait() }
        await pause(milliseconds: 50)  // let the handler wait in receive
        stream.cancel(reason: "test")
        #expect(await eventually(seconds: 20) { report.value != nil }, "the handler's sleep was not interrupted")
        #expect(report.value == HandlerReport(receiveError: .cancelled, taskCancelled: true))

        let afterCancel = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.receive() }
        }
        #expect(afterCancel?.code == .cancelled)
        let sendError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.send([2]) }
        }
        #expect(sendError?.code == .cancelled)
        #expect(await eventually { h.server.inFlightCount == 0 })
    }

    @Test("server cancel: the client's waiting receive and its sends throw cancelled")
    func serverCancel() async throws {
        let go = Signal()
        let h = try await Harness { stream in
            await go.wait()
            stream.cancel(reason: "server says no")
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open() }
        let receiver = Task { () -> TransportError.Code? in
            do {
                while try await stream.receive() != nil {}
                return nil
            } catch {
                return transportCode(error) ?? .invalidState
            }
        }
        await pause(milliseconds: 50)  // let the receiver wait
        go.fire()
        let code = try await withTimeout(seconds: 5) { await receiver.value }
        #expect(code == .cancelled)
        let sendError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.send([1]) }
        }
        #expect(sendError?.code == .cancelled)
        #expect(await eventually { h.server.inFlightCount == 0 })
    }

    @Test("cancelling the client's task while it awaits receive ends the stream at both ends")
    func cancelClientTaskWhileReceiving() async throws {
        let started = Signal()
        let report = Locked<HandlerReport?>(nil)
        let h = try await Harness { stream in
            started.fire()
            let r = await receiveUntilFailure(stream)
            report.update { $0 = r }
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open() }
        try await withTimeout(seconds: 5) { await started.wait() }
        let receiver = Task { () -> String in
            do {
                _ = try await stream.receive()
                return "returned"
            } catch is CancellationError {
                return "CancellationError"
            } catch let e as TransportError {
                return "TransportError.\(e.code)"
            } catch {
                return "\(error)"
            }
        }
        await pause(milliseconds: 100)  // let the receiver wait
        receiver.cancel()
        let result = try await withTimeout(seconds: 5) { await receiver.value }
        #expect(result == "CancellationError" || result == "TransportError.cancelled")

        // The server end.
        #expect(await eventually(seconds: 5) { report.value != nil })
        #expect(report.value == HandlerReport(receiveError: .cancelled, taskCancelled: true))
        // The client end: the stream is over, not just this receive.
        let again = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.receive() }
        }
        #expect(again?.code == .cancelled)
        let sendError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.send([1]) }
        }
        #expect(sendError?.code == .cancelled)
        #expect(await eventually { h.server.inFlightCount == 0 })
    }

    /// After the server ended the call and its handler returned, nothing reads the client's direction any
    /// more; sends must then fail or be dropped, never wait for credit that cannot come.
    @Test("client sends after the server ended the call never hang")
    func sendsAfterServerEndedDoNotHang() async throws {
        let h = try await Harness(initialWindow: 1024) { stream in
            try? await stream.respond([1])
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open() }
        let response = try await withTimeout(seconds: 5) { try await stream.collect() }
        #expect(response.messages == [[1]])
        #expect(await eventually { h.server.inFlightCount == 0 })
        for i in 0..<6 {
            do {
                try await withTimeout(seconds: 2, "send \(i) after the server ended") {
                    try await stream.send([UInt8](repeating: 0, count: 512))
                }
            } catch let e as TimeoutError {
                stream.cancel()
                throw e
            } catch {
                break  // failing is fine
            }
        }
    }

    // MARK: drain

    @Test("drain lets an in-flight call finish within the grace period")
    func drainLetsInFlightCallFinish() async throws {
        let h = try await Harness { stream in
            guard let m = try? await stream.receive() else { return }
            try? await Task.sleep(for: .milliseconds(100))
            try? await stream.respond(m)
        }
        let call = Task { try await h.unary([4, 2]) }
        #expect(await eventually { h.server.inFlightCount == 1 })
        let start = ContinuousClock.now
        try await withTimeout(seconds: 60, "drain") { await h.server.drain(gracePeriod: .seconds(120)) }
        let took = ContinuousClock.now - start
        // Not the whole grace period: drain ends when the call does.
        #expect(took < .seconds(60), "drain took \(took) for a call of 100 ms")
        let response = try await withTimeout(seconds: 5) { try await call.value }
        #expect(response.status == .ok)
        #expect(response.message == [4, 2])
        #expect(h.server.inFlightCount == 0)
    }

    @Test("a draining server refuses new streams with notProcessed (retry-safe)")
    func drainRefusesNewStreams() async throws {
        let go = Signal()
        let h = try await Harness { stream in
            guard let m = try? await stream.receive() else { return }
            await go.wait()
            try? await stream.respond(m)
        }
        let call = Task { try await h.unary([1]) }
        #expect(await eventually { h.server.inFlightCount == 1 })
        let drain = Task { await h.server.drain(gracePeriod: .seconds(5)) }
        await pause(milliseconds: 50)  // drain has begun; the call holds it open

        let refused = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await h.unary([2]) }
        }
        #expect(refused?.code == .notProcessed, "a new stream to a draining server failed with \(String(describing: refused))")
        #expect(refused?.isRetrySafe == true)

        go.fire()
        let response = try await withTimeout(seconds: 5) { try await call.value }
        #expect(response.message == [1])
        try await withTimeout(seconds: 5, "drain") { await drain.value }

        // After the drain, new streams still fail in a retry-safe way.
        let after = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await h.unary([3]) }
        }
        #expect(after?.isRetrySafe == true)
    }

    @Test("drain cancels calls still running after the grace period")
    func drainCancelsAfterGracePeriod() async throws {
        let report = Locked<HandlerReport?>(nil)
        let h = try await Harness { stream in
            let r = await receiveUntilFailure(stream)  // the client never sends
            report.update { $0 = r }
        }
        let stream = try await withTimeout(seconds: 5) { try await h.open() }
        #expect(await eventually { h.server.inFlightCount == 1 })
        let start = ContinuousClock.now
        try await withTimeout(seconds: 50, "drain with a grace period of 200 ms") {
            await h.server.drain(gracePeriod: .milliseconds(200))
        }
        let took = ContinuousClock.now - start
        #expect(took >= .milliseconds(190))
        // Not the handler's minute of sleep: the drain cancelled it after the grace period.
        #expect(took < .seconds(50))

        #expect(await eventually(seconds: 5) { report.value != nil })
        #expect(report.value == HandlerReport(receiveError: .cancelled, taskCancelled: true))
        let clientError = await #expect(throws: TransportError.self) {
            try await withTimeout(seconds: 2) { try await stream.receive() }
        }
        #expect(clientError?.code == .cancelled)
        #expect(h.server.inFlightCount == 0)
    }

    // MARK: load

    @Test("1,000 concurrent unary calls all complete exactly once")
    func thousandConcurrentUnaryCalls() async throws {
        let handled = Locked<[UInt32]>([])
        let h = try await Harness { stream in
            guard let m = try? await stream.receive(), let id = UInt32(bytes: m) else { return }
            handled.append(id)
            try? await stream.respond(m)
        }
        let results = try await withTimeout(seconds: 60) {
            try await withThrowingTaskGroup(of: (UInt32, UnaryResponse).self) { group in
                for i in UInt32(0)..<1000 {
                    group.addTask { (i, try await h.unary(i.bytes)) }
                }
                var results: [(UInt32, UnaryResponse)] = []
                for try await r in group { results.append(r) }
                return results
            }
        }
        #expect(results.count == 1000)
        #expect(results.allSatisfy { $0.1.status == .ok && $0.1.message == $0.0.bytes })
        #expect(results.map(\.0).sorted() == Array(0..<1000))
        #expect(handled.value.sorted() == Array(0..<1000))
        #expect(await eventually { h.server.inFlightCount == 0 })
    }
}
