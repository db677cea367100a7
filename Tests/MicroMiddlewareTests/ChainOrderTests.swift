import MicroCore
import MicroRPC
import MicroTestSupport
import Testing

/// Records entry (`>`) and exit (`<`) of both client levels into a shared log.
struct RecordingClientMiddleware: ClientMiddleware {
    let name: String
    let log: Recorder<String>

    nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        log.append("\(name)>call")
        defer { log.append("\(name)<call") }
        return try await next(call)
    }

    nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        log.append("\(name)>attempt\(attempt.number)")
        defer { log.append("\(name)<attempt\(attempt.number)") }
        return try await next(attempt)
    }
}

/// Like ``RecordingClientMiddleware`` (async), but marks exits by error as the synchronous one does.
struct ErrorMarkingClientMiddleware: ClientMiddleware {
    let name: String
    let log: Recorder<String>

    nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        log.append("\(name)>call")
        do {
            let output = try await next(call)
            log.append("\(name)<call")
            return output
        } catch {
            log.append("\(name)<call:error")
            throw error
        }
    }

    nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        log.append("\(name)>attempt\(attempt.number)")
        do {
            let output = try await next(attempt)
            log.append("\(name)<attempt\(attempt.number)")
            return output
        } catch {
            log.append("\(name)<attempt\(attempt.number):error")
            throw error
        }
    }
}

/// Records entry and exit around a unary handler.
struct RecordingServerMiddleware: ServerMiddleware {
    let name: String
    let log: Recorder<String>

    nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        log.append("\(name)>")
        defer { log.append("\(name)<") }
        return try await next(request, context)
    }
}

/// Records its hooks at both client levels, synchronously; fails every call in `willCall` when `refuse` is set.
struct SynchronousRecordingClientMiddleware: ClientMiddleware {
    let name: String
    let log: Recorder<String>
    var refuse = false

    var callsSynchronously: Bool { true }

    func willCall(_ call: ClientCall) throws {
        log.append("\(name)>call")
        if refuse { throw RPCError(.resourceExhausted, "\(name) refuses") }
    }

    func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) {
        log.append(outcome.isSuccess ? "\(name)<call" : "\(name)<call:error")
    }

    func willAttempt(_ attempt: ClientAttempt) throws { log.append("\(name)>attempt\(attempt.number)") }

    func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        log.append(outcome.isSuccess ? "\(name)<attempt\(attempt.number)" : "\(name)<attempt\(attempt.number):error")
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}

/// Records its hooks around a unary handler, synchronously (no async level); refuses when `refuse` is set.
struct SynchronousRecordingServerMiddleware: ServerMiddleware {
    let name: String
    let log: Recorder<String>
    var refuse = false

    var handlesSynchronously: Bool { true }

    func willHandle(_ request: Request, context: RPCContext) throws {
        log.append("\(name)>")
        if refuse { throw ServerRefusal(.resourceExhausted, "\(name) is full") }
    }

    func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        switch outcome {
        case .success: log.append("\(name)<")
        case .failure(let e as ServerRefusal): log.append("\(name)<refused:\(e.code)")
        case .failure: log.append("\(name)<error")
        }
    }
}

/// Refuses every call before its handler: a restartable NACK.
struct RefusingServerMiddleware: ServerMiddleware {
    nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        throw ServerRefusal(.resourceExhausted, "this node is full")
    }
}

/// Adds metadata to the call (every attempt) and to each attempt (its number).
struct MetadataClientMiddleware: ClientMiddleware {
    nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        var call = call
        call.metadata["x-call"] = "from-call"
        return try await next(call)
    }

    nonisolated(nonsending) func interceptAttempt(
        _ attempt: ClientAttempt, next: nonisolated(nonsending) (ClientAttempt) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        var attempt = attempt
        attempt.metadata["x-attempt"] = "\(attempt.number)"
        return try await next(attempt)
    }
}

/// Adds metadata to the handler's context.
struct ContextServerMiddleware: ServerMiddleware {
    nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.metadata["x-server"] = "from-server-middleware"
        return try await next(request, context)
    }
}

@Suite("Middleware chain order")
struct ChainOrderTests {
    static func echoServer(_ name: String = "svc", configure: (inout ServerConfiguration) -> Void = { _ in },
                           log: Recorder<String>? = nil) async throws -> RunningServer {
        try await RunningServer.start(name, configure: configure) { server in
            server.handle("Echo.Call") { r, _ in
                log?.append("handler")
                return Response(body: r.body)
            }
        }
    }

    @Test("client middlewares run first-listed outermost: once around the call, once around each attempt, exits reversed")
    func clientOrderWithRetry() async throws {
        let good = try await Self.echoServer()
        let log = Recorder<String>()
        let selector = OrderedSelector([deadAddress(), good.address])
        let c = RunningClient.start(selector: selector) { config in
            config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1))
            config.use {
                RecordingClientMiddleware(name: "A", log: log)
                RecordingClientMiddleware(name: "B", log: log)
                RecordingClientMiddleware(name: "C", log: log)
            }
        }
        let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: CallOptions(retries: 2))
        #expect(r.body == [7])
        #expect(selector.failures == ["n0"], "the dead node was tried first")
        #expect(selector.successes == ["n1"])
        #expect(log.all == [
            "A>call", "B>call", "C>call",
            "A>attempt1", "B>attempt1", "C>attempt1", "C<attempt1", "B<attempt1", "A<attempt1",
            "A>attempt2", "B>attempt2", "C>attempt2", "C<attempt2", "B<attempt2", "A<attempt2",
            "C<call", "B<call", "A<call",
        ])
        await c.stop()
        await good.stop()
    }

    @Test("synchronous client middlewares (first, last, or all) keep the order of the async ones, retries included")
    func synchronousClientOrder() async throws {
        let good = try await Self.echoServer()
        let expected = [
            "A>call", "B>call", "C>call",
            "A>attempt1", "B>attempt1", "C>attempt1", "C<attempt1:error", "B<attempt1:error", "A<attempt1:error",
            "A>attempt2", "B>attempt2", "C>attempt2", "C<attempt2", "B<attempt2", "A<attempt2",
            "C<call", "B<call", "A<call",
        ]
        for layout in ["sync-async-sync", "async-sync-async", "sync-sync-sync"] {
            let log = Recorder<String>()
            let kinds = layout.split(separator: "-")
            func member(_ i: Int, _ name: String) -> AnyClientMiddleware {
                kinds[i] == "sync" ? AnyClientMiddleware(SynchronousRecordingClientMiddleware(name: name, log: log))
                    : AnyClientMiddleware(ErrorMarkingClientMiddleware(name: name, log: log))
            }
            let selector = OrderedSelector([deadAddress(), good.address])
            let c = RunningClient.start(selector: selector) { config in
                config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1))
                config.use {
                    member(0, "A")
                    member(1, "B")
                    member(2, "C")
                }
            }
            let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [7]), options: CallOptions(retries: 2))
            #expect(r.body == [7])
            #expect(log.all == expected, "\(layout)")
            await c.stop()
        }
        await good.stop()
    }

    @Test("a synchronous client middleware that throws in willCall fails the call before anything is sent")
    func synchronousClientRefusal() async throws {
        let handlerLog = Recorder<String>()
        let s = try await Self.echoServer(log: handlerLog)
        let log = Recorder<String>()
        let c = RunningClient.start { config in
            config.use {
                SynchronousRecordingClientMiddleware(name: "A", log: log)
                SynchronousRecordingClientMiddleware(name: "B", log: log, refuse: true)
                SynchronousRecordingClientMiddleware(name: "C", log: log)
            }
        }
        let result = await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: [1]),
                                   CallOptions(retries: 2, address: s.address))
        #expect(result.rpcError?.code == .resourceExhausted)
        #expect(log.all == ["A>call", "B>call", "A<call:error"])
        #expect(handlerLog.all.isEmpty, "nothing was sent")
        await c.stop()
        await s.stop()
    }

    @Test("server middlewares run first-listed outermost around the handler, exits reversed")
    func serverOrder() async throws {
        let log = Recorder<String>()
        let s = try await Self.echoServer(configure: { config in
            config.use {
                RecordingServerMiddleware(name: "A", log: log)
                RecordingServerMiddleware(name: "B", log: log)
                RecordingServerMiddleware(name: "C", log: log)
            }
        }, log: log)
        let c = RunningClient.start()
        let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1, 2]), options: CallOptions(address: s.address))
        #expect(r.body == [1, 2])
        #expect(log.all == ["A>", "B>", "C>", "handler", "C<", "B<", "A<"])
        await c.stop()
        await s.stop()
    }

    @Test("synchronous server middlewares run their hooks in chain order, alone (hooks around the handler) or mixed with async ones")
    func synchronousServerOrder() async throws {
        // All synchronous: the server calls the chain's hooks around the handler.
        let log = Recorder<String>()
        let s = try await Self.echoServer(configure: { config in
            config.use {
                SynchronousRecordingServerMiddleware(name: "A", log: log)
                SynchronousRecordingServerMiddleware(name: "B", log: log)
            }
            config.use { SynchronousRecordingServerMiddleware(name: "C", log: log) }
            #expect(config.middleware?.handlesSynchronously == true)
        }, log: log)
        // Mixed: the chain runs a synchronous member's hooks where its intercept would run.
        let mixedLog = Recorder<String>()
        let mixed = try await Self.echoServer(configure: { config in
            config.use {
                SynchronousRecordingServerMiddleware(name: "A", log: mixedLog)
                RecordingServerMiddleware(name: "B", log: mixedLog)
                SynchronousRecordingServerMiddleware(name: "C", log: mixedLog)
            }
            #expect(config.middleware?.handlesSynchronously == false)
        }, log: mixedLog)
        let c = RunningClient.start()
        for server in [s, mixed] {
            let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [4]), options: CallOptions(address: server.address))
            #expect(r.body == [4])
        }
        #expect(log.all == ["A>", "B>", "C>", "handler", "C<", "B<", "A<"])
        #expect(mixedLog.all == ["A>", "B>", "C>", "handler", "C<", "B<", "A<"])
        await c.stop()
        await s.stop()
        await mixed.stop()
    }

    @Test("a synchronous middleware's refusal: a restartable NACK, the handler and inner hooks skipped, outer ones see it")
    func synchronousRefusal() async throws {
        let log = Recorder<String>()
        let s = try await Self.echoServer(configure: { config in
            config.use {
                SynchronousRecordingServerMiddleware(name: "A", log: log)
                SynchronousRecordingServerMiddleware(name: "B", log: log, refuse: true)
                SynchronousRecordingServerMiddleware(name: "C", log: log)
            }
        }, log: log)
        let c = RunningClient.start()
        let result = await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: [1]),
                                   CallOptions(retries: 0, address: s.address))
        let e = try #require(result.rpcError)
        #expect(e.code == .resourceExhausted, "\(e)")
        #expect(e.workNotStarted, "a restartable NACK")
        #expect(e.message.contains("B is full"), "\(e.message)")
        #expect(log.all == ["A>", "B>", "A<refused:resourceExhausted"],
                "the refusing middleware's own didHandle, the inner one and the handler did not run")
        await c.stop()
        await s.stop()
    }

    @Test("a handler's error reaches every synchronous middleware's didHandle as the outcome")
    func synchronousSeesHandlerError() async throws {
        let log = Recorder<String>()
        let s = try await RunningServer.start(configure: { config in
            config.use {
                SynchronousRecordingServerMiddleware(name: "A", log: log)
                SynchronousRecordingServerMiddleware(name: "B", log: log)
            }
        }) { server in
            server.handle("Echo.Fail") { _, _ in
                log.append("handler")
                throw RPCError(.notFound, "nothing here")
            }
        }
        let c = RunningClient.start()
        let result = await outcome(c.client, Request(service: "svc", endpoint: "Echo.Fail", body: []),
                                   CallOptions(retries: 0, address: s.address))
        #expect(result.rpcError?.code == .notFound)
        #expect(log.all == ["A>", "B>", "handler", "B<error", "A<error"])
        await c.stop()
        await s.stop()
    }

    @Test("a server middleware that throws ServerRefusal stops the chain: the client gets a restartable NACK")
    func refusalIsANack() async throws {
        let log = Recorder<String>()
        let refusing = try await Self.echoServer(configure: { config in
            config.use {
                RecordingServerMiddleware(name: "A", log: log)
                RefusingServerMiddleware()
                RecordingServerMiddleware(name: "C", log: log)
            }
        }, log: log)
        let c = RunningClient.start()
        let result = await outcome(c.client, Request(service: "svc", endpoint: "Echo.Call", body: [1]),
                                   CallOptions(retries: 0, address: refusing.address))
        let e = try #require(result.rpcError)
        #expect(e.code == .resourceExhausted, "\(e)")
        #expect(e.workNotStarted, "a restartable NACK: the work did not start")
        #expect(e.message.contains("this node is full"), "\(e.message)")
        #expect(log.all == ["A>", "A<"], "neither the inner middleware nor the handler ran")
        await c.stop()
        await refusing.stop()
    }

    @Test("a call refused by a middleware is retried at once on another node")
    func refusalRetriedElsewhere() async throws {
        let refusedLog = Recorder<String>()
        let refusing = try await Self.echoServer(configure: { $0.use { RefusingServerMiddleware() } }, log: refusedLog)
        let goodLog = Recorder<String>()
        let good = try await Self.echoServer(log: goodLog)
        let selector = OrderedSelector([refusing.address, good.address])
        let c = RunningClient.start(selector: selector) { $0.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1)) }
        // Not idempotent: only a NACK (work not started) may be retried.
        let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [3]), options: CallOptions(retries: 2))
        #expect(r.body == [3])
        #expect(refusedLog.all.isEmpty, "the refusing node's handler never ran")
        #expect(goodLog.all == ["handler"])
        #expect(selector.failures == ["n0"], "the NACK counts against the refusing node")
        #expect(selector.successes == ["n1"])
        await c.stop()
        await refusing.stop()
        await good.stop()
    }

    @Test("metadata a client middleware adds (per call and per attempt) and a server middleware adds reaches the handler")
    func metadataReachesHandler() async throws {
        let s = try await RunningServer.start(configure: { $0.use { ContextServerMiddleware() } }) { server in
            server.handle("Echo.Meta") { r, context in
                let seen = [
                    context.metadata["x-call"] ?? "-",
                    context.metadata["x-attempt"] ?? "-",
                    context.metadata["x-server"] ?? "-",
                    r.metadata["x-call"] ?? "-",
                ]
                return Response(body: bytes(seen.joined(separator: " ")))
            }
        }
        let selector = OrderedSelector([deadAddress(), s.address])
        let c = RunningClient.start(selector: selector) { config in
            config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1))
            config.use { MetadataClientMiddleware() }
        }
        let r = try await c.client.call(Request(service: "svc", endpoint: "Echo.Meta", body: []), options: CallOptions(retries: 2))
        // The second attempt reached the handler (the first went to the dead node).
        #expect(text(r.body) == "from-call 2 from-server-middleware from-call")
        await c.stop()
        await s.stop()
    }

    @Test("use {} called twice appends: the middlewares of the first call stay outermost (client and server)")
    func useTwiceAppends() async throws {
        let serverLog = Recorder<String>()
        let s = try await Self.echoServer(configure: { config in
            config.use { RecordingServerMiddleware(name: "A", log: serverLog) }
            config.use {
                RecordingServerMiddleware(name: "B", log: serverLog)
                RecordingServerMiddleware(name: "C", log: serverLog)
            }
        }, log: serverLog)
        let clientLog = Recorder<String>()
        let include = false
        let c = RunningClient.start { config in
            config.use {
                RecordingClientMiddleware(name: "A", log: clientLog)
                RecordingClientMiddleware(name: "B", log: clientLog)
            }
            config.use {
                if include { RecordingClientMiddleware(name: "X", log: clientLog) }
                RecordingClientMiddleware(name: "C", log: clientLog)
            }
        }
        _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]), options: CallOptions(address: s.address))
        #expect(serverLog.all == ["A>", "B>", "C>", "handler", "C<", "B<", "A<"])
        #expect(clientLog.all == [
            "A>call", "B>call", "C>call",
            "A>attempt1", "B>attempt1", "C>attempt1", "C<attempt1", "B<attempt1", "A<attempt1",
            "C<call", "B<call", "A<call",
        ], "an absent optional middleware (if false) is skipped")
        await c.stop()
        await s.stop()
    }

    @Test("middleware set directly replaces a chain added with use {}: only the new one runs (client and server)")
    func directAssignmentReplacesUse() async throws {
        // `use` keeps the chain behind closures specialized for its type; assigning `middleware` must drop them.
        let serverLog = Recorder<String>()
        let s = try await Self.echoServer(configure: { config in
            config.use { SynchronousRecordingServerMiddleware(name: "old", log: serverLog) }
            config.middleware = SynchronousRecordingServerMiddleware(name: "new", log: serverLog)
        }, log: serverLog)
        let clientLog = Recorder<String>()
        let c = RunningClient.start { config in
            config.use { RecordingClientMiddleware(name: "old", log: clientLog) }
            config.middleware = RecordingClientMiddleware(name: "new", log: clientLog)
        }
        _ = try await c.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]), options: CallOptions(address: s.address))
        #expect(serverLog.all == ["new>", "handler", "new<"])
        #expect(clientLog.all == ["new>call", "new>attempt1", "new<attempt1", "new<call"])
        await c.stop()
        await s.stop()
    }
}
