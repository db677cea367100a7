internal import MicroCore

/// How one attempt ended.
enum AttemptResult<Output> {
    case success(Output)
    /// The server answered with a non-OK status.
    case status(RPCError)
    /// No answer: the transport failed (connect, connection lost, cancelled, deadline, ...).
    case transport(TransportError)
    /// Not sent: a circuit breaker kept it off the node (the error's cause is its ``CircuitOpenError``). One
    /// payload, so that the result of every attempt stays small.
    case notSent(RPCError)
}

extension Client {
    /// The one client path: deadline, then per attempt select -> attempt -> mark -> (backoff -> retry), by one
    /// retry-safety rule (``isRetryable(_:idempotent:)``) and one retry budget. Every kind of call goes through it,
    /// and it is where the middleware chain attaches: around the logical call, and around each attempt. The
    /// attempt (a unary call, opening a stream) is a non-escaping closure that captures nothing: what it needs
    /// comes borrowed as `context` (the request), so a call costs no allocation and no copy of the request for it.
    /// Inlined into its two callers, with the attempt closure: each async level a call returns through costs an
    /// executor check, which under an executor preference takes the task's status-record lock (docs/RPC.md).
    @inline(__always) nonisolated(nonsending) func execute<Context, Output: ClientOutputConvertible>(
        service: String, endpoint: String, contentType: String, metadata: Metadata, options: CallOptions, kind: ClientCall.Kind,
        context: borrowing Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async throws -> Output {
        var now = Timestamp.now
        let deadline = deadline(timeout: options.timeout, now: now)
        if hasMiddleware, let middleware {
            return Output.unwrap(try await intercept(
                ClientCall(service: service, endpoint: endpoint, contentType: contentType, metadata: metadata, options: options,
                           deadline: deadline, kind: kind, startedAt: now),
                middleware, context: context, attempt))
        }
        // Without middleware: the loop below. (The loop with middleware, `attemptsThroughMiddleware`, is the same
        // skeleton over the same helpers; one loop for both cost this path 80 ns per call, measured.)
        let maxRetries = min(1000, max(0, options.retries ?? configuration.retries))
        retryBudget.recordCall()
        var number: UInt16 = 1
        var next: Next?
        var lastError: RPCError?
        while true {
            if number > 1 { now = .now }
            if now >= deadline { throw Self.deadlineError(attempts: number - 1, lastError: lastError) }
            // Where to: the given address, or the selector's next node (another one on a retry).
            let address: String
            var node: Node?
            if let a = options.address {
                address = a
            } else {
                guard let selector else {
                    throw RPCUsageError("no address given and the client has no selector: cannot tell where \(service) runs")
                }
                let (picked, waited) = try await pickNode(selector, service: service, options: options, deadline: deadline,
                                                          next: &next, lastError: lastError)
                node = picked
                address = picked.address
                if waited { now = .now }
            }
            let head = RequestHead(service: service, endpoint: endpoint, contentType: contentType,
                                   timeoutMicroseconds: Self.microseconds(nanoseconds: now.nanoseconds(to: deadline)), attempt: number,
                                   metadata: metadata)
            let error: RPCError
            switch await attempt(context, address, head, deadline) {
            case .success(let output):
                if let node, let selector { selector.mark(service, node: node, outcome: .success(latency: now.duration(to: .now))) }
                return output
            case .status(let e):
                error = e
                if let node { markFailure(e, service: service, node: node, since: now) }
            case .transport(let t):
                error = RPCError(t)
                if let node { markFailure(error, service: service, node: node, since: now) }
            case .notSent(let e):
                throw e  // only the middleware's breaker keeps an attempt from being sent
            }
            try await backOffForRetry(after: error, attempt: number, maxRetries: maxRetries, idempotent: options.idempotent,
                                      deadline: deadline, service: service, endpoint: endpoint, node: node?.id ?? address)
            lastError = error
            number += 1
        }
    }


    /// The logical call through the middleware, out of line (the path without middleware stays as small as it
    /// was). `context` is an ordinary parameter (not `borrowing`) so that the closure can capture it without a copy.
    @inline(never)
    nonisolated(nonsending) private func intercept<Context, Output: ClientOutputConvertible>(
        _ call: ClientCall, _ middleware: SpecializedClientMiddleware, context: Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async throws -> ClientOutput {
        // A chain of synchronous middleware: its hooks around the attempts, in this function (no level of its own).
        if middleware.callsSynchronously {
            return try await middleware.withCallHooks(call) { call in
                try await attemptsThroughMiddleware(service: call.service, endpoint: call.endpoint, contentType: call.contentType, metadata: call.metadata,
                                   options: call.options, now: call.startedAt, deadline: call.deadline, middleware: middleware,
                                   summary: call.summary, context: context, attempt).clientOutput
            }
        }
        return try await middleware.intercept(call) { call in
            try await attemptsThroughMiddleware(service: call.service, endpoint: call.endpoint, contentType: call.contentType, metadata: call.metadata,
                               options: call.options, now: call.startedAt, deadline: call.deadline, middleware: middleware,
                               summary: call.summary, context: context, attempt).clientOutput
        }
    }

    /// The attempts of one logical call with middleware: each through the attempt middleware. The same rules as
    /// the loop of ``execute``, plus nodes skipped while their breaker is open.
    nonisolated(nonsending) private func attemptsThroughMiddleware<Context, Output: ClientOutputConvertible>(
        service: String, endpoint: String, contentType: String, metadata: Metadata, options: CallOptions,
        now start: Timestamp, deadline: Timestamp, middleware: SpecializedClientMiddleware, summary: CallSummary?, context: borrowing Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async throws -> Output {
        var now = start
        let maxRetries = min(1000, max(0, options.retries ?? configuration.retries))
        retryBudget.recordCall()
        var number: UInt16 = 1
        var next: Next?
        var lastError: RPCError?
        /// Nodes skipped because their breaker is open (not attempts: nothing was sent).
        var skipped = 0
        while true {
            if number > 1 || skipped > 0 { now = .now }
            if now >= deadline { throw Self.deadlineError(attempts: number - 1, lastError: lastError) }
            // Where to: the given address, or the selector's next node (another one on a retry).
            let address: String
            var node: Node?
            if let a = options.address {
                address = a
            } else {
                guard let selector else {
                    throw RPCUsageError("no address given and the client has no selector: cannot tell where \(service) runs")
                }
                let (picked, waited) = try await pickNode(selector, service: service, options: options, deadline: deadline,
                                                          next: &next, lastError: lastError)
                node = picked
                address = picked.address
                if waited { now = .now }
            }
            let result: AttemptResult<Output> = await Self.attempt(
                through: middleware, service: service, endpoint: endpoint, address: address, node: node, number: number,
                metadata: metadata, deadline: deadline, startedAt: now, summary: summary, contentType: contentType, context: context, attempt)
            let error: RPCError
            switch result {
            case .success(let output):
                if let node, let selector { selector.mark(service, node: node, outcome: .success(latency: now.duration(to: .now))) }
                return output
            case .status(let e):
                error = e
                if let node { markFailure(e, service: service, node: node, since: now) }
            case .transport(let t):
                error = RPCError(t)
                if let node { markFailure(error, service: service, node: node, since: now) }
            case .notSent(let e):
                let open = e.cause as! CircuitOpenError
                // The breaker kept the call off this node: not an attempt. Skip the node while it is open and pick
                // another, a bounded number of times.
                if let node, let selector { selector.mark(service, node: node, outcome: .held(for: open.retryAfter)) }
                skipped += 1
                guard node != nil, skipped < Self.maxSkippedNodes, !Task.isCancelled else { throw e }
                lastError = e
                continue
            }
            try await backOffForRetry(after: error, attempt: number, maxRetries: maxRetries, idempotent: options.idempotent,
                                      deadline: deadline, service: service, endpoint: endpoint, node: node?.id ?? address)
            lastError = error
            number += 1
        }
    }

    /// The error of a call whose deadline passed after `attempts` attempts. Always with a cause: an RPCError
    /// without one is a status the server sent.
    static func deadlineError(attempts: UInt16, lastError: RPCError?) -> RPCError {
        RPCError(.deadlineExceeded, lastError.map { "deadline exceeded after \(attempts) attempt(s); last: \($0.message)" }
                 ?? "deadline exceeded before the call was sent",
                 cause: lastError ?? TransportError(.deadlineExceeded, "the deadline passed before the call was sent"))
    }

    /// Marks a failed attempt to `node` (begun at `start`): an application error is the node doing its job, a NACK,
    /// an unavailable node or a lost connection its failure, a cancellation nothing.
    func markFailure(_ error: RPCError, service: String, node: Node, since start: Timestamp) {
        guard let selector else { return }
        let latency = start.duration(to: .now)
        let outcome: Outcome
        if let t = error.cause as? TransportError {
            outcome = t.code == .cancelled ? .ignored : .failure(latency: latency)
        } else {
            outcome = error.isNodeFailure ? .failure(latency: latency) : .success(latency: latency)
        }
        selector.mark(service, node: node, outcome: outcome)
    }

    /// Returns after the backoff when the failed attempt `attempt` may be retried (retries left, retry-safe, not
    /// cancelled, budget), else throws `failure`. The backoff never runs past the deadline or the task.
    ///
    /// Out of line: inlined, its `ContinuousClock` values (a resilient type, of a size known only at run time)
    /// made every call allocate five slots in its task's allocator and look up their metadata on entry, retry or not.
    @inline(never)
    func backOffForRetry(after failure: RPCError, attempt: UInt16, maxRetries: Int, idempotent: Bool, deadline: Timestamp,
                         service: String, endpoint: String, node: String) async throws {
        guard Int(attempt) <= maxRetries, Self.isRetryable(failure, idempotent: idempotent), !Task.isCancelled,
              retryBudget.tryRetry() else { throw failure }
        logRetry(service: service, endpoint: endpoint, attempt: attempt + 1, node: node, error: failure)
        let wake = min(ContinuousClock.now + configuration.backoff.delay(forRetry: Int(attempt)), deadline.instant)
        do {
            try await Task.sleep(until: wake, clock: .continuous)
        } catch {
            throw RPCError(.cancelled, "cancelled while waiting to retry; last: \(failure.message)", cause: failure)
        }
    }

    /// Logs a retry (at debug), out of line.
    @inline(never)
    func logRetry(service: String, endpoint: String, attempt: UInt16, node: String, error: RPCError) {
        logger.debug("retrying", metadata: ["service": "\(service)", "endpoint": "\(endpoint)", "attempt": "\(attempt)",
                                            "node": "\(node)", "error": "\(error)"])
    }

    /// How many nodes one call skips because their breakers are open before it fails with the breaker's error.
    static let maxSkippedNodes = 16

    /// ``attempt(through:_:contentType:context:_:)`` for the first try or a retry, out of line: the loop without
    /// middleware stays as small as it was.
    @inline(never)
    nonisolated(nonsending) static func attempt<Context, Output: ClientOutputConvertible>(
        through middleware: SpecializedClientMiddleware, service: String, endpoint: String, address: String, node: Node?, number: UInt16,
        metadata: Metadata, deadline: Timestamp, startedAt: Timestamp, summary: CallSummary?, contentType: String, context: Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async -> AttemptResult<Output> {
        summary?.attempted(node?.id ?? address, hedge: false)
        let info = ClientAttempt(service: service, endpoint: endpoint, address: address, node: node, number: number, isHedge: false,
                                 metadata: metadata, deadline: deadline, startedAt: startedAt)
        return await Self.attempt(through: middleware, info, contentType: contentType, context: context, attempt)
    }

    /// One attempt through the attempt middleware: errors thrown by the chain become results (a transport error
    /// keeps its kind, an open breaker is `notSent`).
    nonisolated(nonsending) static func attempt<Context, Output: ClientOutputConvertible>(
        through middleware: SpecializedClientMiddleware, _ info: ClientAttempt, contentType: String, context: Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async -> AttemptResult<Output> {
        do {
            let output: ClientOutput
            if middleware.callsSynchronously {
                // Synchronous middleware: its hooks around the attempt, in this function (no level of its own).
                output = try await middleware.withAttemptHooks(info) { info in
                    try await send(info, contentType: contentType, context: context, attempt)
                }
            } else {
                output = try await middleware.interceptAttempt(info) { info in
                    try await send(info, contentType: contentType, context: context, attempt)
                }
            }
            return .success(Output.unwrap(output))
        } catch let e as RPCError {
            if e.cause is CircuitOpenError { return .notSent(e) }
            if let t = e.cause as? TransportError { return .transport(t) }
            return .status(e)
        } catch is CancellationError {
            return .transport(TransportError(.cancelled, "the attempt was cancelled"))
        } catch {
            return .status(RPCError(.unknown, "a client middleware failed the attempt: \(error)", cause: error))
        }
    }

    /// An attempt's send, inside the attempt middleware: its head (the budget left now), then the transport;
    /// a failure is thrown for the middleware to see.
    @inline(__always)
    nonisolated(nonsending) private static func send<Context, Output: ClientOutputConvertible>(
        _ info: ClientAttempt, contentType: String, context: Context,
        _ attempt: nonisolated(nonsending) (borrowing Context, String, RequestHead, Timestamp) async -> AttemptResult<Output>
    ) async throws -> ClientOutput {
        let head = RequestHead(service: info.service, endpoint: info.endpoint, contentType: contentType,
                               timeoutMicroseconds: microseconds(nanoseconds: Timestamp.now.nanoseconds(to: info.deadline)),
                               attempt: info.number, metadata: info.metadata)
        switch await attempt(context, info.address, head, info.deadline) {
        case .success(let output): return output.clientOutput
        case .status(let e): throw e
        case .transport(let t): throw RPCError(t)
        case .notSent(let e): throw e
        }
    }

    /// The node for an attempt: the selector's next pick. When there is none (or the registry cannot be read), the
    /// call waits for one until its deadline (wait for ready), unless the call or the client turned that off; then
    /// it fails at once, after one suspension. Returns whether it waited (the caller's clock reading is then old).
    nonisolated(nonsending) func pickNode(_ selector: any Selector, service: String, options: CallOptions, deadline: Timestamp,
                                                  next: inout Next?, lastError: RPCError?) async throws -> (Node, waited: Bool) {
        let wait = options.waitForNode ?? configuration.waitForNode
        var waited = false
        var registryFailures = 0
        while true {
            let failure: any Error
            do {
                if next == nil { next = try await selector.select(service, options: options.selection) }
                return (try next!.next(), waited)
            } catch let e as RPCError {
                throw e
            } catch {
                failure = error
            }
            let last = lastError.map { "; last: \($0.message)" } ?? ""
            guard wait else {
                // Never throw without suspending: callers that retry in a loop would hold their threads.
                await Task.yield()
                throw lastError ?? RPCError(.unavailable, "no node of \(service): \(failure)", cause: failure, workNotStarted: true)
            }
            if Task.isCancelled {
                throw RPCError(.cancelled, "cancelled while waiting for a node of \(service)\(last)", cause: lastError ?? failure)
            }
            let now = Timestamp.now
            if now >= deadline {
                let why = failure is SelectorError ? "" : " (\(failure))"
                throw RPCError(.unavailable, "no node of \(service) became available before the deadline\(why)\(last)",
                               cause: lastError ?? failure, workNotStarted: true)
            }
            waited = true
            if let next {
                await next.waitForChange(until: deadline)
            } else {
                // The registry did not answer the first read: again, backing off within the deadline.
                registryFailures += 1
                let wake = now.advanced(by: configuration.backoff.delay(forRetry: registryFailures))
                try? await BackgroundExecutor.shared.sleep(until: min(deadline, wake))
            }
        }
    }

    /// Whether `error` may be retried on another node: never a cancelled or expired call or a message too large
    /// for any node; always when the work certainly did not start; an idempotent call also when its outcome is
    /// unknown (the connection broke mid-call).
    static func isRetryable(_ error: RPCError, idempotent: Bool) -> Bool {
        switch error.code {
        case .cancelled, .deadlineExceeded:
            return false
        default:
            break
        }
        if let t = error.cause as? TransportError, t.code == .messageTooLarge { return false }
        if error.workNotStarted { return true }
        return idempotent && error.code == .unavailable
    }
}

/// A unary call's attempt: one request, one response, on the transport's unary path.
enum UnaryAttempt {
    nonisolated(nonsending) static func run(_ transport: any ClientTransport, _ body: [UInt8], to address: String, head: RequestHead,
                                            deadline: Timestamp) async -> AttemptResult<Response> {
        let response: UnaryResponse
        do {
            response = try await transport.unary(to: address, head: head, message: body, deadline: deadline)
        } catch {
            return .transport(error)
        }
        let status = response.status
        if case .ok = status { return .success(Response(body: response.message ?? [], metadata: response.head.metadata)) }
        return .status(RPCError(status: status, metadata: response.trailers?.metadata ?? response.head.metadata)
                       ?? RPCError(.unknown, "unexpected status \(status)"))
    }

    /// ``run(_:_:to:head:deadline:)`` that `cancellation` can cancel from outside the task too (nil: as `run`).
    nonisolated(nonsending) static func run(_ transport: any ClientTransport, _ body: [UInt8], to address: String, head: RequestHead,
                                            deadline: Timestamp, cancellation: CallCancellation?) async -> AttemptResult<Response> {
        guard let cancellation else { return await run(transport, body, to: address, head: head, deadline: deadline) }
        let response: UnaryResponse
        do {
            response = try await transport.unary(to: address, head: head, message: body, deadline: deadline, cancellation: cancellation)
        } catch {
            return .transport(error)
        }
        let status = response.status
        if case .ok = status { return .success(Response(body: response.message ?? [], metadata: response.head.metadata)) }
        return .status(RPCError(status: status, metadata: response.trailers?.metadata ?? response.head.metadata)
                       ?? RPCError(.unknown, "unexpected status \(status)"))
    }
}

/// A stream's attempt: opening it. Once open, a stream is never retried.
enum StreamAttempt {
    nonisolated(nonsending) static func run(_ transport: any ClientTransport, _ codec: any Codec, to address: String, head: RequestHead,
                                            deadline: Timestamp) async -> AttemptResult<ClientCallStream> {
        do {
            let stream = try await transport.openStream(to: address, head: head, firstMessage: nil, endOfInput: false, deadline: deadline)
            return .success(ClientCallStream(stream: stream, codec: codec, deadline: deadline))
        } catch {
            return .transport(error)
        }
    }
}
