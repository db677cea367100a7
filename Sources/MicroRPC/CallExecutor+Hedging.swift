internal import MicroCore

extension Client {
    /// A hedged unary call: the middleware around the logical call, then ``hedgedAttempts``.
    nonisolated(nonsending) func executeHedged(_ request: Request, options: CallOptions, policy: HedgingPolicy) async throws -> Response {
        let now = Timestamp.now
        let deadline = deadline(timeout: options.timeout, now: now)
        guard let middleware = configuration.middleware else {
            return try await hedgedAttempts(request, options: options, policy: policy, deadline: deadline, middleware: nil, summary: nil)
        }
        let call = ClientCall(service: request.service, endpoint: request.endpoint, contentType: request.contentType,
                              metadata: request.metadata, options: options, deadline: deadline, kind: .unary, startedAt: now)
        return Response.unwrap(try await middleware.intercept(call) { call in
            var request = request
            request.service = call.service
            request.endpoint = call.endpoint
            request.metadata = call.metadata
            return try await hedgedAttempts(request, options: call.options, policy: policy, deadline: deadline,
                                            middleware: middleware, summary: call.summary).clientOutput
        })
    }

    /// The attempts of a hedged call, each in a child task on the loop of its node's connections: the first at
    /// once; while none has answered, a hedge to another node after the policy's delay (if the retry budget
    /// allows); a failed attempt is retried by the usual rule once no other attempt is under way. The first
    /// success wins and the others are cancelled (the transport sends CANCEL). Every child marks its own node, so a
    /// cancelled loser is marked too (superseded: it stays counted against its node for a while). The delay is a timer action (``HedgeWake``), not a task.
    nonisolated(nonsending) private func hedgedAttempts(_ request: Request, options: CallOptions, policy: HedgingPolicy, deadline: Timestamp,
                                                        middleware: (any ClientMiddleware)?, summary: CallSummary?) async throws -> Response {
        guard let selector else { throw RPCUsageError("hedging needs a selector") }
        let service = request.service
        let window = latencyWindow(service, request.endpoint)
        let maxAttempts = 1 + min(1000, max(0, options.retries ?? configuration.retries))
        retryBudget.recordCall()
        // A discarding group: the attempts hand their results to `wakeUp`, and the group only bounds their lives
        // (it waits for the cancelled losers before the call returns).
        return try await withThrowingDiscardingTaskGroup { group in
            var next: Next?
            var sent = 0
            var hedges = 0
            var running = 0
            var lastError: RPCError?
            var skipped = 0
            let wakeUp = HedgeWake()

            /// Picks a node here (the `Next` stays on this task) and starts an attempt to it in a child task.
            @discardableResult
            func launch(hedge: Bool) async throws -> String {
                let (node, _) = try await pickNode(selector, service: service, options: options, deadline: deadline, next: &next,
                                                   lastError: lastError)
                sent += 1
                summary?.attempted(node.id, hedge: hedge)
                let number = UInt16(truncatingIfNeeded: sent)
                let info = ClientAttempt(service: service, endpoint: request.endpoint, address: node.address, node: node,
                                         number: number, isHedge: hedge, metadata: request.metadata, deadline: deadline)
                running += 1
                // On the loop of the node's connections: the attempt and its answer cost no thread hop.
                group.addTask(executorPreference: transport.preferredExecutor(for: node.address)) { [self] in
                    wakeUp.ended(await hedgeAttempt(node, info, request, middleware: middleware, deadline: deadline, selector: selector,
                                                    window: window, wakeUp: wakeUp))
                }
                return node.address
            }

            var timer: BackgroundExecutor.Timer?
            func armTimer() {
                guard hedges < policy.maxHedges else { return }
                let at = Timestamp.now.advanced(by: hedgeDelay(policy, window))
                timer = BackgroundExecutor.shared.schedule(at: at) { wakeUp.timerFired() }
            }
            defer { if let timer { BackgroundExecutor.shared.cancel(timer) } }

            try await launch(hedge: false)
            armTimer()
            while running > 0 {
                let result: Result<Response, RPCError>
                switch await wakeUp.wait() {
                case .timer:
                    timer = nil
                    guard hedges < policy.maxHedges, sent < maxAttempts, !Task.isCancelled, Timestamp.now < deadline,
                          retryBudget.tryRetry() else { continue }
                    hedges += 1
                    logger.debug("hedging", metadata: ["service": "\(service)", "endpoint": "\(request.endpoint)", "attempt": "\(sent + 1)"])
                    try await launch(hedge: true)
                    armTimer()
                    continue
                case .ended(let ended):
                    result = ended
                }
                running -= 1
                switch result {
                case .success(let response):
                    wakeUp.answered.store(true, ordering: .releasing)
                    group.cancelAll()
                    return response
                case .failure(let error):
                    if error.cause is CircuitOpenError {
                        // Not sent: another node, without spending an attempt (bounded).
                        sent -= 1
                        skipped += 1
                        lastError = error
                        guard skipped < Self.maxSkippedNodes else {
                            if running == 0 { throw error }
                            continue
                        }
                        try await launch(hedge: false)
                        continue
                    }
                    lastError = error
                    if running > 0 { continue }  // another attempt may still answer
                    guard sent < maxAttempts, Self.isRetryable(error, idempotent: true), !Task.isCancelled, Timestamp.now < deadline,
                          retryBudget.tryRetry() else { throw error }
                    let wake = min(ContinuousClock.now + configuration.backoff.delay(forRetry: sent), deadline.instant)
                    try? await Task.sleep(until: wake, clock: .continuous)
                    try await launch(hedge: false)
                }
            }
            throw lastError ?? RPCError(.internalError, "hedged call ended without an outcome")
        }
    }

    /// One attempt of a hedged call to `node`, marked on the selector (a loser as superseded); its result for the
    /// call's task.
    nonisolated(nonsending) private func hedgeAttempt(_ node: Node, _ info: ClientAttempt, _ request: Request, middleware: (any ClientMiddleware)?,
                                                      deadline: Timestamp, selector: any Selector, window: LatencyWindow,
                                                      wakeUp: HedgeWake) async -> Result<Response, RPCError> {
        let start = Timestamp.now
        let service = request.service
        let number = info.number
        let result: AttemptResult<Response>
        if let middleware {
            result = await Self.attempt(through: middleware, info, contentType: request.contentType, context: request) {
                request, address, head, deadline in
                await UnaryAttempt.run(self.transport, request.body, to: address, head: head, deadline: deadline)
            }
        } else {
            let head = RequestHead(service: service, endpoint: request.endpoint, contentType: request.contentType,
                                   timeoutMicroseconds: Self.microseconds(nanoseconds: start.nanoseconds(to: deadline)),
                                   attempt: number, metadata: request.metadata)
            result = await UnaryAttempt.run(self.transport, request.body, to: node.address, head: head, deadline: deadline)
        }
        let latency = start.duration(to: .now)
        let lost: Bool = if case .success = result { false } else { Task.isCancelled }
        if lost {
            // Another attempt answered first: this node was slower, by at least `latency`; it stays
            // counted against the node (see Outcome.superseded). The caller giving up says nothing.
            let superseded = wakeUp.answered.load(ordering: .acquiring)
            selector.mark(service, node: node, outcome: superseded ? .superseded(after: latency) : .ignored)
            return .failure(RPCError(.cancelled, "another attempt answered first"))
        }
        switch result {
        case .success(let response):
            selector.mark(service, node: node, outcome: .success(latency: latency))
            window.record(nanoseconds: Timestamp.nanoseconds(latency), now: Timestamp.now.nanoseconds)
            return .success(response)
        case .status(let e):
            markFailure(e, service: service, node: node, since: start)
            return .failure(e)
        case .transport(let t):
            let e = RPCError(t)
            markFailure(e, service: service, node: node, since: start)
            return .failure(e)
        case .notSent(let e):
            let open = e.cause as! CircuitOpenError
            selector.mark(service, node: node, outcome: .held(for: open.retryAfter))
            return .failure(e)
        }
    }

    /// The window of recent latencies of `service`'s `endpoint`, made on first use.
    func latencyWindow(_ service: String, _ endpoint: String) -> LatencyWindow {
        let key = LatencyKey(service: service, endpoint: endpoint)
        return latencies.withLock { table in
            if let w = table[key] { return w }
            let w = LatencyWindow()
            table[key] = w
            return w
        }
    }

    /// How long a hedged call waits before it hedges.
    func hedgeDelay(_ policy: HedgingPolicy, _ window: LatencyWindow) -> Duration {
        switch policy.delay {
        case .fixed(let d):
            return d
        case .percentile(let q):
            guard let ns = window.cachedQuantile(q, now: Timestamp.now.nanoseconds) else { return policy.initialDelay }
            return max(.nanoseconds(ns), policy.minimumDelay)
        }
    }
}
