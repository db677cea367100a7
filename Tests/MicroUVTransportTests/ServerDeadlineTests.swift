import MicroEventLoop
import MicroCore
import MicroCoreTestSupport
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

/// The server enforces a call's deadline itself (docs/PROTOCOL.md §6.2): when the budget in the REQUEST runs out,
/// the handler is cancelled and the client hears DEADLINE_EXCEEDED from the server, with no CANCEL from the
/// client and no deadline of the client's own.
@Suite("Server deadlines")
struct ServerDeadlineTests {
    /// Unary endpoint "slow" sleeps (cancellably) for 30 s, "stubborn" waits on the gate whatever happens, "fast"
    /// answers at once.
    final class Handlers: ServerHandler, Sendable {
        let cancelled = Atomic<Int>(0)
        let returned = Atomic<Int>(0)
        let gate = Gate()
        final class Unary: UnaryHandler {
            let owner: Handlers
            init(_ owner: Handlers) { self.owner = owner }
            nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
                defer { owner.returned.add(1, ordering: .relaxed) }
                switch request.head.endpoint {
                case "slow":
                    do {
                        try await Task.sleep(for: .seconds(30))
                    } catch {
                        owner.cancelled.add(1, ordering: .relaxed)
                    }
                    return UnaryReply(message: [1])
                case "stubborn":
                    await owner.gate.wait()
                    return UnaryReply(message: [2])
                default:
                    return UnaryReply(message: [3])
                }
            }
        }
        private var unary: Unary { Unary(self) }
        func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { head.endpoint.hasPrefix("stream") ? nil : unary }
        /// How a stream handler's receive() ended, for "streamReceive".
        let receiveError = Mutex<TransportError.Code?>(nil)

        func handleStream(_ stream: ServerStream) async {
            if stream.head.endpoint == "streamReceive" {
                do {
                    while try await stream.receive() != nil {}
                } catch {
                    receiveError.withLock { $0 = (error as? TransportError)?.code }
                }
                return
            }
            do {
                try await Task.sleep(for: .seconds(30))
                try? await stream.respond([9])
            } catch {
                cancelled.add(1, ordering: .relaxed)
            }
            returned.add(1, ordering: .relaxed)
        }
    }

    static func head(_ endpoint: String, budgetMicroseconds: UInt64) -> RequestHead {
        RequestHead(service: "s", endpoint: endpoint, timeoutMicroseconds: budgetMicroseconds)
    }

    @Test("a unary handler running past the budget is cancelled and the server answers DEADLINE_EXCEEDED")
    func unary() async throws {
        let handlers = Handlers()
        let h = try await Harness.start(serverHandler: handlers)
        // No client deadline: only the server can end this call.
        let r = try await withTimeout(10) {
            try await h.client.unary(to: h.address, head: Self.head("slow", budgetMicroseconds: 50_000), message: [0], deadline: nil)
        }
        guard case .error(let code, let message) = r.status else {
            Issue.record("expected an ERROR status, got \(r.status)")
            await h.stop()
            return
        }
        #expect(StatusCode(rawValue: code) == .deadlineExceeded)
        #expect(message.contains("deadline"))
        #expect(r.message == nil)
        try await eventually(5, "handler cancelled") { handlers.cancelled.load(ordering: .relaxed) == 1 }
        // Calls without a deadline, and calls within theirs, are untouched.
        let ok = try await h.client.unary(to: h.address, head: Self.head("fast", budgetMicroseconds: 0), message: [0], deadline: nil)
        #expect(ok.status == .ok && ok.message == [3])
        await h.stop()
    }

    @Test("a handler that ignores cancellation: one DEADLINE_EXCEEDED response, its late reply is dropped")
    func exactlyOneResponse() async throws {
        let handlers = Handlers()
        let h = try await Harness.start(serverHandler: handlers)
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        let settings = encode { FrameEncoder.encodeSettings(Settings(), into: $0) }
        let one: [UInt8] = [0]
        let stubborn = one.withUnsafeBytes { m in
            encode { FrameEncoder.encodeRequest(stream: 1, Self.head("stubborn", budgetMicroseconds: 30_000), message: m, endStream: true, into: $0) }
        }
        try await peer.send(ConnectionPreface.bytes + settings + stubborn)
        @Sendable func responses(_ id: UInt32) -> [[UInt8]] { peer.frames().filter { $0.0 == .response && $0.1 == id }.map(\.2) }
        try await eventually(10, "server answers the expired call") { !responses(1).isEmpty }
        let payload = responses(1)[0]
        #expect(payload[0] == 1, "status kind ERROR")
        #expect(payload[1...4] == [0, 0, 0, 4], "code DEADLINE_EXCEEDED")
        // The handler returns late with a reply: nothing more may go out for stream 1.
        handlers.gate.open()
        try await eventually(5, "stubborn handler returned") { handlers.returned.load(ordering: .relaxed) == 1 }
        let fast = one.withUnsafeBytes { m in
            encode { FrameEncoder.encodeRequest(stream: 3, Self.head("fast", budgetMicroseconds: 0), message: m, endStream: true, into: $0) }
        }
        try await peer.send(fast)
        try await eventually(5, "next call answered") { !responses(3).isEmpty }
        #expect(responses(1).count == 1, "exactly one response for the expired call")
        #expect(!peer.frames().contains { $0.0 == .drain }, "the connection stays up")
        let connection = peer.connection!
        try await connection.loop.submit { connection.close() }
        await h.stop()
    }

    @Test("a stream past its budget: handler cancelled, the client gets DEADLINE_EXCEEDED from the server")
    func stream() async throws {
        let handlers = Handlers()
        let h = try await Harness.start(serverHandler: handlers)
        let s = try await h.client.openStream(to: h.address, head: Self.head("stream", budgetMicroseconds: 50_000),
                                              firstMessage: nil, endOfInput: false, deadline: nil)
        let (head, messages, trailers) = try await withTimeout(10) { try await s.collect() }
        #expect(messages.isEmpty)
        guard case .error(let code, _) = trailers?.status ?? head.status else {
            Issue.record("expected an ERROR status, got \(head.status)")
            await h.stop()
            return
        }
        #expect(StatusCode(rawValue: code) == .deadlineExceeded)
        try await eventually(5, "stream handler cancelled") { handlers.cancelled.load(ordering: .relaxed) == 1 }
        try await eventually(5, "stream closed at the server") { await h.server.activeStreamCount() == 0 }
        // A handler waiting in receive() learns why: the deadline, not a plain cancel.
        let waiting = try await h.client.openStream(to: h.address, head: Self.head("streamReceive", budgetMicroseconds: 50_000),
                                                    firstMessage: nil, endOfInput: false, deadline: nil)
        _ = try await withTimeout(10) { try await waiting.collect() }
        try await eventually(5, "the handler's receive ended") { handlers.receiveError.withLock { $0 } != nil }
        #expect(handlers.receiveError.withLock { $0 } == .deadlineExceeded)
        await h.stop()
    }

    @Test("many suspended calls with different budgets all expire, none early")
    func manyCalls() async throws {
        let handlers = Handlers()
        let h = try await Harness.start(serverHandler: handlers)
        let client = h.client, address = h.address
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let budget = UInt64(20_000 + (i % 10) * 10_000)
                    let t0 = ContinuousClock.now
                    let r = try await client.unary(to: address, head: Self.head("slow", budgetMicroseconds: budget), message: [0], deadline: nil)
                    #expect(ContinuousClock.now - t0 >= .microseconds(Int64(budget)), "never before the budget")
                    guard case .error(let code, _) = r.status else { Issue.record("call \(i): \(r.status)"); return }
                    #expect(StatusCode(rawValue: code) == .deadlineExceeded)
                }
            }
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started < .seconds(25), "all ended by the server, long before the handlers' 30 s")
        try await eventually(5, "every handler cancelled") { handlers.cancelled.load(ordering: .relaxed) == 200 }
        await h.stop()
    }
}

/// A graceful stop: each connection gets one DRAIN(NO_ERROR) and is closed when it has no open stream.
@Suite("Server drain")
struct ServerDrainTests {
    @Test("an idle connection gets exactly one DRAIN(NO_ERROR), then the server closes it")
    func idleConnectionOneDrain() async throws {
        let h = try await Harness.start()
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        let settings = encode { FrameEncoder.encodeSettings(Settings(), into: $0) }
        try await peer.send(ConnectionPreface.bytes + settings)
        try await eventually(5, "server SETTINGS") { peer.frames().contains { $0.0 == .settings } }
        await h.server.drain(gracePeriod: .seconds(30))
        try await eventually(5, "server closes the idle connection") { peer.isClosed }
        let drains = peer.frames().filter { $0.0 == .drain }
        #expect(drains.count == 1)
        if let d = drains.first {
            let code = d.2.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
            #expect(ErrorCode(rawValue: code) == .noError)
        }
        await h.client.shutdown()
        #expect(h.clientGroup.shutdownGracefully())
        #expect(h.serverGroup.shutdownGracefully())
    }
}
