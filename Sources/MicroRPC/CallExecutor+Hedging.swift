internal import MicroCore

extension Client {
    /// A hedged unary call: the middleware around the logical call, then ``hedgedAttempts``.
    nonisolated(nonsending) func executeHedged(_ request: Request, options: CallOptions, policy: HedgingPolicy) async throws -> Response {
        let now = Timestamp.now
        let deadline = deadline(timeout: options.timeout, now: now)
        guard let middleware else {
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

    /// The attempts of a hedged call. The first runs on this task (no task of its own: most calls are answered
    /// before the delay). While it has no answer, the timer's action starts a hedge to another node after the
    /// policy's delay, if the retry budget allows, in a task on the loop of that node's connections. The first
    /// success wins: a hedge's answer cancels the first attempt through its `CallCancellation`, the first's answer
    /// cancels the hedges' tasks (the transport sends CANCEL). Each attempt marks its own node, a loser as
    /// superseded. When the first attempt and its hedges all failed, ``hedgedRetries`` retries by the usual rule.
    nonisolated(nonsending) private func hedgedAttempts(_ request: Request, options: CallOptions, policy: HedgingPolicy, deadline: Timestamp,
                                                        middleware: SpecializedClientMiddleware?, summary: CallSummary?) async throws -> Response {
        guard let selector else { throw RPCUsageError("hedging needs a selector") }
        let call = HedgedCall(request: request, policy: policy, deadline: deadline, middleware: middleware, summary: summary,
                              selector: selector, window: latencyWindow(request.service, request.endpoint),
                              maxAttempts: 1 + min(1000, max(0, options.retries ?? configuration.retries)))
        retryBudget.recordCall()
        var next: Next?
        let (node, _) = try await pickNode(selector, service: request.service, options: options, deadline: deadline, next: &next,
                                           lastError: nil)
        summary?.attempted(node.id, hedge: false)
        let race = HedgeRace(next: next!, sent: 1)
        if policy.maxHedges > 0 && call.maxAttempts > 1 { armHedgeTimer(race, call) }
        let info = ClientAttempt(service: request.service, endpoint: request.endpoint, address: node.address, node: node,
                                 number: 1, isHedge: false, metadata: request.metadata, deadline: deadline)
        var outcome = race.firstEnded(await hedgeAttempt(node, info, call, answered: race.answered, cancellation: race.firstCancellation))
        if case .waitForHedges = outcome { outcome = await race.waitForHedges() }
        race.finish()
        switch outcome {
        case .answered(let response):
            return response
        case .failed(let error):
            let (sent, hedges) = race.state.withLock { ($0.sent, $0.hedges) }
            nonisolated(unsafe) let next = race.state.withLock { $0.next }  // no attempt of the race runs any more
            return try await hedgedRetries(call, options: options, next: next, sent: sent, hedges: hedges, lastError: error,
                                           answered: race.answered)
        case .waitForHedges:
            preconditionFailure("waitForHedges returns an answer or an error")
        }
    }

    /// Arms the hedge delay's timer of `race` (on the caller's loop when it runs on one, see ``HedgeTimer``).
    private func armHedgeTimer(_ race: HedgeRace, _ call: HedgedCall) {
        let at = Timestamp.now.advanced(by: hedgeDelay(call.policy, call.window))
        let timer = HedgeTimer.start(transport, at: at) { [self] in hedgeTimerFired(race, call) }
        let stale = race.state.withLock { s -> Bool in
            if s.finished { return true }
            s.timer = timer
            return false
        }
        if stale { timer.cancel() }
    }

    /// The delay passed (on the timer's thread): while no attempt answered and the first still runs, a hedge to
    /// another node in a task of its own, if the rules and the budget allow; then the timer again for the next.
    private func hedgeTimerFired(_ race: HedgeRace, _ call: HedgedCall) {
        let request = call.request
        let picked: (Node, Int)? = race.state.withLock { s in
            s.timer = nil
            guard !s.finished, !s.firstEnded, s.winner == nil, s.hedges < call.policy.maxHedges, s.sent < call.maxAttempts,
                  Timestamp.now < call.deadline, retryBudget.tryRetry() else { return nil }
            // A hedge is opportunistic: no node free now, no hedge (the budget token is spent; this is rare).
            guard let node = try? s.next.next() else { return nil }
            s.sent += 1
            s.hedges += 1
            s.hedgesRunning += 1
            return (node, s.sent)
        }
        guard let (node, number) = picked else { return }
        call.summary?.attempted(node.id, hedge: true)
        logger.debug("hedging", metadata: ["service": "\(request.service)", "endpoint": "\(request.endpoint)", "attempt": "\(number)"])
        let info = ClientAttempt(service: request.service, endpoint: request.endpoint, address: node.address, node: node,
                                 number: UInt16(truncatingIfNeeded: number), isHedge: true, metadata: request.metadata,
                                 deadline: call.deadline)
        // On the loop of the node's connections: the attempt and its answer cost no thread hop.
        let task = Task(executorPreference: transport.preferredExecutor(for: node.address)) { [self] in
            race.hedgeEnded(await hedgeAttempt(node, info, call, answered: race.answered, cancellation: nil))
        }
        let (over, again) = race.state.withLock { s -> (Bool, Bool) in
            if s.finished || s.winner != nil { return (true, false) }
            s.hedgeTasks.append(task)
            return (false, s.hedges < call.policy.maxHedges)
        }
        if over { task.cancel() }
        if again { armHedgeTimer(race, call) }
    }

    /// The retries of a hedged call whose first attempt and hedges failed (``hedgedAttempts``), each in a child
    /// task on the loop of its node's connections, under the same rules: the usual retry rule and backoff; while an
    /// attempt has no answer, a hedge after the delay; the first success wins and cancels the others.
    nonisolated(nonsending) private func hedgedRetries(_ call: HedgedCall, options: CallOptions, next: Next, sent: Int, hedges: Int,
                                                       lastError: RPCError, answered: HedgeAnswered) async throws -> Response {
        let request = call.request
        let service = request.service
        let policy = call.policy
        let deadline = call.deadline
        let maxAttempts = call.maxAttempts
        // A discarding group: the attempts hand their results to `wakeUp`, and the group only bounds their lives
        // (it waits for the cancelled losers before the call returns).
        return try await withThrowingDiscardingTaskGroup { group in
            var next: Next? = next
            var sent = sent
            var hedges = hedges
            var running = 0
            var lastError: RPCError? = lastError
            var skipped = 0
            let wakeUp = HedgeWake()

            /// Picks a node here (the `Next` stays on this task) and starts an attempt to it in a child task.
            func launch(hedge: Bool) async throws {
                let (node, _) = try await pickNode(call.selector, service: service, options: options, deadline: deadline, next: &next,
                                                   lastError: lastError)
                sent += 1
                call.summary?.attempted(node.id, hedge: hedge)
                let info = ClientAttempt(service: service, endpoint: request.endpoint, address: node.address, node: node,
                                         number: UInt16(truncatingIfNeeded: sent), isHedge: hedge, metadata: request.metadata,
                                         deadline: deadline)
                running += 1
                // On the loop of the node's connections: the attempt and its answer cost no thread hop.
                group.addTask(executorPreference: transport.preferredExecutor(for: node.address)) { [self] in
                    wakeUp.ended(await hedgeAttempt(node, info, call, answered: answered, cancellation: nil))
                }
            }

            var timer: HedgeTimer?
            func armTimer() {
                guard hedges < policy.maxHedges else { return }
                let at = Timestamp.now.advanced(by: hedgeDelay(policy, call.window))
                timer = HedgeTimer.start(transport, at: at) { wakeUp.timerFired() }
            }
            defer { timer?.cancel() }

            /// After `error` ended the last attempt under way: another node at once when nothing was sent (an open
            /// breaker), else a retry when the rule and the budget allow, after the backoff.
            func retry(after error: RPCError) async throws {
                if error.cause is CircuitOpenError {
                    // Not sent: another node, without spending an attempt (bounded).
                    sent -= 1
                    skipped += 1
                    guard skipped < Self.maxSkippedNodes else { throw error }
                    try await launch(hedge: false)
                    return
                }
                guard sent < maxAttempts, Self.isRetryable(error, idempotent: true), !Task.isCancelled, Timestamp.now < deadline,
                      retryBudget.tryRetry() else { throw error }
                let wake = min(ContinuousClock.now + configuration.backoff.delay(forRetry: sent), deadline.instant)
                try? await Task.sleep(until: wake, clock: .continuous)
                try await launch(hedge: false)
            }

            try await retry(after: lastError!)
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
                    answered.set()
                    group.cancelAll()
                    return response
                case .failure(let error):
                    lastError = error
                    let notSent = error.cause is CircuitOpenError
                    if notSent && running > 0 && skipped + 1 >= Self.maxSkippedNodes {
                        // Not sent, and no other node to skip to: wait for the attempts under way.
                        sent -= 1
                        skipped += 1
                        continue
                    }
                    if running > 0 && !notSent { continue }  // another attempt may still answer
                    try await retry(after: error)
                }
            }
            throw lastError ?? RPCError(.internalError, "hedged call ended without an outcome")
        }
    }

    /// One attempt of a hedged call to `node`, marked on the selector (a loser as superseded); its result for the
    /// call's task. `cancellation` (the first attempt's, run on the caller's task) cancels it from outside.
    nonisolated(nonsending) private func hedgeAttempt(_ node: Node, _ info: ClientAttempt, _ call: HedgedCall, answered: HedgeAnswered,
                                                      cancellation: CallCancellation?) async -> Result<Response, RPCError> {
        let request = call.request
        let start = Timestamp.now
        let service = request.service
        let deadline = call.deadline
        let result: AttemptResult<Response>
        if let middleware = call.middleware {
            result = await Self.attempt(through: middleware, info, contentType: request.contentType, context: request) {
                request, address, head, deadline in
                await UnaryAttempt.run(self.transport, request.body, to: address, head: head, deadline: deadline, cancellation: cancellation)
            }
        } else {
            let head = RequestHead(service: service, endpoint: request.endpoint, contentType: request.contentType,
                                   timeoutMicroseconds: Self.microseconds(nanoseconds: start.nanoseconds(to: deadline)),
                                   attempt: info.number, metadata: request.metadata)
            result = await UnaryAttempt.run(self.transport, request.body, to: node.address, head: head, deadline: deadline,
                                            cancellation: cancellation)
        }
        let latency = start.duration(to: .now)
        let lost: Bool = if case .success = result { false } else { Task.isCancelled || cancellation?.isCancelled == true }
        if lost {
            // Another attempt answered first: this node was slower, by at least `latency`; it stays
            // counted against the node (see Outcome.superseded). The caller giving up says nothing.
            call.selector.mark(service, node: node, outcome: answered.isSet ? .superseded(after: latency) : .ignored)
            return .failure(RPCError(.cancelled, "another attempt answered first"))
        }
        switch result {
        case .success(let response):
            call.selector.mark(service, node: node, outcome: .success(latency: latency))
            call.window.record(nanoseconds: Timestamp.nanoseconds(latency), now: Timestamp.now.nanoseconds)
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
            call.selector.mark(service, node: node, outcome: .held(for: open.retryAfter))
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

/// What every attempt of one hedged call shares.
struct HedgedCall: Sendable {
    let request: Request
    let policy: HedgingPolicy
    let deadline: Timestamp
    let middleware: SpecializedClientMiddleware?
    let summary: CallSummary?
    let selector: any Selector
    let window: LatencyWindow
    let maxAttempts: Int
}
