public import MicroCore
public import Synchronization
import Testing

/// A client and a server of one transport implementation, serving `handler`, ready for calls to `address`.
public struct TransportUnderTest: Sendable {
    public var client: any ClientTransport
    public var server: any ServerTransport
    public var address: String
    /// Stops both (and checks what the implementation promises about its end, e.g. loops closing clean).
    public var stop: @Sendable () async -> Void

    public init(client: any ClientTransport, server: any ServerTransport, address: String, stop: @escaping @Sendable () async -> Void) {
        self.client = client
        self.server = server
        self.address = address
        self.stop = stop
    }
}

/// Starts a ``TransportUnderTest`` whose server serves the given handler.
public typealias TransportFactory = @Sendable (any ServerHandler) async throws -> TransportUnderTest

/// What every transport promises (docs/PROTOCOL.md and the `ClientTransport`/`ServerTransport` contracts), as
/// checks any implementation runs with a factory of its own: the in-memory transport and the libuv one (plain
/// and TLS) run them all.
public enum TransportContract {
    /// The names of the checks, for `@Test(arguments:)`.
    public static let checks = ["unary", "stream", "unaryDeadline", "streamDeadline", "cancel", "unaryCancellation", "drain",
                                "unfinishedStream"]

    /// Runs the check called `name` against a transport made by `make`.
    public static func run(_ name: String, _ make: TransportFactory) async throws {
        switch name {
        case "unary": try await unary(make)
        case "stream": try await stream(make)
        case "unaryDeadline": try await unaryDeadline(make)
        case "streamDeadline": try await streamDeadline(make)
        case "cancel": try await cancel(make)
        case "unaryCancellation": try await unaryCancellation(make)
        case "drain": try await drain(make)
        case "unfinishedStream": try await unfinishedStream(make)
        default: Issue.record("no transport check called \(name)")
        }
    }

    /// The handler of every check. Unary endpoints: "echo" (the message back, with the request's metadata), "slow"
    /// (sleeps 30 s, cancellably, counting cancellations), "gate" (waits for ``Probe/gate``). Stream endpoints:
    /// "streamEcho" (every message back, then OK), "streamSlow" (sleeps 30 s), "streamWait" (waits on receive until
    /// it fails), "streamForget" (returns without ending its direction).
    public final class Probe: ServerHandler, UnaryHandler {
        public let cancelled = Atomic<Int>(0)
        public let started = Atomic<Int>(0)
        public let gate = Gate()

        public init() {}

        public func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { head.endpoint.hasPrefix("stream") ? nil : self }

        public nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
            started.add(1, ordering: .relaxed)
            switch request.head.endpoint {
            case "slow":
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    cancelled.add(1, ordering: .relaxed)
                }
                return UnaryReply(message: [])
            case "gate":
                await gate.wait()
                return UnaryReply(message: [1])
            default:
                return UnaryReply(head: ResponseHead(metadata: request.head.metadata), message: request.message)
            }
        }

        public func handleStream(_ stream: ServerStream) async {
            started.add(1, ordering: .relaxed)
            switch stream.head.endpoint {
            case "streamEcho":
                do {
                    try await stream.sendHead(ResponseHead())
                    while let m = try await stream.receive() { try await stream.send(m) }
                    try await stream.finish()
                } catch {}
            case "streamSlow":
                do {
                    try await Task.sleep(for: .seconds(30))
                    try? await stream.finish()
                } catch {
                    cancelled.add(1, ordering: .relaxed)
                }
            case "streamWait":
                do {
                    while try await stream.receive() != nil {}
                } catch {
                    cancelled.add(1, ordering: .relaxed)
                }
            case "streamForget":
                return
            default:
                await serveAsStream(stream)
            }
        }
    }

    static func head(_ endpoint: String, budgetMicroseconds: UInt64 = 0, metadata: Metadata = [:]) -> RequestHead {
        RequestHead(service: "contract", endpoint: endpoint, timeoutMicroseconds: budgetMicroseconds, metadata: metadata)
    }

    static func code(_ status: Status) -> StatusCode? {
        switch status {
        case .ok: .ok
        case .error(let c, _), .nack(_, let c, _): StatusCode(rawValue: c)
        }
    }

    /// A unary call: the message and metadata come back, status OK; 200 of them concurrently too.
    public static func unary(_ make: TransportFactory) async throws {
        let t = try await make(Probe())
        let r = try await withTimeout(seconds: 10) {
            try await t.client.unary(to: t.address, head: head("echo", metadata: ["k": "v"]), message: [1, 2, 3], deadline: nil)
        }
        #expect(r.status == .ok)
        #expect(r.message == [1, 2, 3])
        #expect(r.head.metadata["k"] == "v")
        let client = t.client, address = t.address
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let r = try await client.unary(to: address, head: head("echo"), message: [UInt8(i % 256)], deadline: nil)
                    #expect(r.message == [UInt8(i % 256)])
                }
            }
            try await group.waitForAll()
        }
        await t.stop()
    }

    /// A bidirectional stream: 500 messages each way in order, then OK.
    public static func stream(_ make: TransportFactory) async throws {
        let t = try await make(Probe())
        let s = try await t.client.openStream(to: t.address, head: head("streamEcho"), firstMessage: nil, endOfInput: false, deadline: nil)
        let received = try await withTimeout(seconds: 20) {
            async let sending: Void = {
                for i in 0..<500 { try await s.send(withUnsafeBytes(of: UInt32(i)) { Array($0) }) }
                try await s.finish()
            }()
            var got: [[UInt8]] = []
            var end: ResponseHead?
            while let part = try await s.receive() {
                switch part {
                case .head: break
                case .message(let m): got.append(m)
                case .end(let h): end = h
                }
            }
            try await sending
            #expect(end?.status ?? .ok == .ok)
            return got
        }
        #expect(received.count == 500)
        #expect(received == (0..<500).map { i in withUnsafeBytes(of: UInt32(i)) { Array($0) } })
        await t.stop()
    }

    /// A unary call past its budget: the server answers DEADLINE_EXCEEDED itself (no client deadline, no CANCEL)
    /// and cancels the handler.
    public static func unaryDeadline(_ make: TransportFactory) async throws {
        let probe = Probe()
        let t = try await make(probe)
        let r = try await withTimeout(seconds: 10) {
            try await t.client.unary(to: t.address, head: head("slow", budgetMicroseconds: 50_000), message: [0], deadline: nil)
        }
        #expect(code(r.status) == .deadlineExceeded, "\(r.status)")
        #expect(await eventually(seconds: 10) { probe.cancelled.load(ordering: .relaxed) == 1 }, "handler cancelled")
        await t.stop()
    }

    /// A stream past its budget: the same, for streams.
    public static func streamDeadline(_ make: TransportFactory) async throws {
        let probe = Probe()
        let t = try await make(probe)
        let s = try await t.client.openStream(to: t.address, head: head("streamSlow", budgetMicroseconds: 50_000),
                                              firstMessage: nil, endOfInput: false, deadline: nil)
        let (h, messages, trailers) = try await withTimeout(seconds: 10) { try await s.collect() }
        #expect(messages.isEmpty)
        #expect(code(trailers?.status ?? h.status) == .deadlineExceeded)
        #expect(await eventually(seconds: 10) { probe.cancelled.load(ordering: .relaxed) == 1 }, "handler cancelled")
        await t.stop()
    }

    /// Cancelling a stream at the client reaches the handler.
    public static func cancel(_ make: TransportFactory) async throws {
        let probe = Probe()
        let t = try await make(probe)
        let s = try await t.client.openStream(to: t.address, head: head("streamWait"), firstMessage: nil, endOfInput: false, deadline: nil)
        try await s.send([1])
        #expect(await eventually(seconds: 10) { probe.started.load(ordering: .relaxed) == 1 })
        s.cancel()
        #expect(await eventually(seconds: 10) { probe.cancelled.load(ordering: .relaxed) == 1 }, "the handler saw the cancel")
        do {
            _ = try await s.receive()
            Issue.record("a cancelled stream must not deliver")
        } catch {
            #expect(transportCode(error) == .cancelled)
        }
        await t.stop()
    }

    /// A unary call cancelled through a `CallCancellation` (not its task) ends with `cancelled` and its handler is
    /// cancelled; one cancelled before it starts ends at once, without reaching the handler; an answered one is
    /// not disturbed by a late cancel. The calls run on the transport's preferred executor (the libuv transport's
    /// loop: its path without a hop) and once from a plain task.
    public static func unaryCancellation(_ make: TransportFactory) async throws {
        let probe = Probe()
        let t = try await make(probe)
        let client = t.client
        let address = t.address
        let executor = client.preferredExecutor(for: address)

        let late = CallCancellation()
        let r = try await Task(executorPreference: executor) {
            try await client.unary(to: address, head: head("echo"), message: [3], deadline: nil, cancellation: late)
        }.value
        late.cancel()
        #expect(r.message == [3])

        for (round, preference) in [executor, nil].enumerated() {
            let cancellation = CallCancellation()
            let call = Task(executorPreference: preference) {
                try await client.unary(to: address, head: head("slow"), message: [1], deadline: nil, cancellation: cancellation)
            }
            #expect(await eventually(seconds: 10) { probe.started.load(ordering: .relaxed) == 2 + round })
            cancellation.cancel()
            let ended = try await withTimeout(seconds: 10) { await call.result }
            if case .failure(let error) = ended {
                #expect(transportCode(error) == .cancelled, "\(error)")
            } else {
                Issue.record("a cancelled call must not answer")
            }
            #expect(!call.isCancelled, "the task itself was not cancelled")
            #expect(await eventually(seconds: 10) { probe.cancelled.load(ordering: .relaxed) == 1 + round }, "the handler saw the cancel")
        }

        let early = CallCancellation()
        early.cancel()
        let refused = await Task(executorPreference: executor) {
            try await client.unary(to: address, head: head("echo"), message: [2], deadline: nil, cancellation: early)
        }.result
        if case .failure(let error) = refused {
            #expect(transportCode(error) == .cancelled, "\(error)")
        } else {
            Issue.record("a call cancelled before it started must not run")
        }
        #expect(probe.started.load(ordering: .relaxed) == 3, "the call cancelled early never reached the server")
        await t.stop()
    }

    /// A graceful stop: a call in flight finishes; a call made after it began fails retry-safe (never lost,
    /// never run).
    public static func drain(_ make: TransportFactory) async throws {
        let probe = Probe()
        let t = try await make(probe)
        let client = t.client, address = t.address, server = t.server
        let inFlight = Task { try await client.unary(to: address, head: head("gate"), message: [0], deadline: nil) }
        #expect(await eventually(seconds: 10) { probe.started.load(ordering: .relaxed) == 1 })
        let stopping = Task { await server.drain(gracePeriod: .seconds(30)) }
        // New calls are refused once the drain is under way (the first may race the DRAIN: retried here).
        var refused: TransportError?
        for _ in 0..<200 where refused == nil {
            do {
                _ = try await client.unary(to: address, head: head("echo"), message: [1], deadline: nil)
                try await Task.sleep(for: .milliseconds(5))
            } catch let e as TransportError {
                refused = e
            }
        }
        #expect(refused?.isRetrySafe == true, "refused retry-safe: \(String(describing: refused))")
        #expect(probe.started.load(ordering: .relaxed) >= 1)
        probe.gate.open()
        let r = try await withTimeout(seconds: 10) { try await inFlight.value }
        #expect(r.status == .ok && r.message == [1], "the call in flight finished")
        await stopping.value
        await t.stop()
    }

    /// A stream handler that returns without ending its direction: the client gets an ERROR, never a hang.
    public static func unfinishedStream(_ make: TransportFactory) async throws {
        let t = try await make(Probe())
        let s = try await t.client.openStream(to: t.address, head: head("streamForget"), firstMessage: nil, endOfInput: true, deadline: nil)
        let (h, _, trailers) = try await withTimeout(seconds: 10) { try await s.collect() }
        #expect(code(trailers?.status ?? h.status) == .internalError)
        await t.stop()
    }
}

/// A gate tasks wait on (ignoring cancellation) until it is opened.
public final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [UnsafeContinuation<Void, Never>])>((false, []))
    public init() {}
    public func wait() async {
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
    public func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
