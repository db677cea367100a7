internal import MicroFraming
public import MicroSelector
public import MicroTransport
internal import MicroRegistry

/// Calls services: unary calls, bidirectional streams, and (through a broker) publishing.
///
/// A call names a service and an endpoint. The node is the call's `address` when given, else the selector's
/// pick among the service's nodes. The deadline is the earlier of the call's timeout and the deadline of the
/// handler the call is made from (``RPCContext``); the server gets the remaining budget. A failed call is retried
/// on another node only when its work certainly did not start (connect failure, restartable NACK, a draining
/// server) or the call is idempotent and its outcome unknown, with jittered backoff, within the deadline, and
/// only while the retry budget allows.
///
/// Thread-safe. Calls made from a task whose executor is the transport's loop for the address (see
/// `UVClientTransport.loop(for:)`) never change threads.
public final class Client: Sendable {
    public let transport: any ClientTransport
    public let selector: (any Selector)?
    public let configuration: ClientConfiguration
    public let retryBudget: RetryBudget

    public init(transport: any ClientTransport, selector: (any Selector)? = nil, configuration: ClientConfiguration = ClientConfiguration()) {
        self.transport = transport
        self.selector = selector
        self.configuration = configuration
        retryBudget = RetryBudget(configuration.retryBudget)
        defaultTimeoutNanoseconds = Timestamp.nanoseconds(configuration.defaultTimeout)
    }

    private let defaultTimeoutNanoseconds: Int64

    /// The deadline of a call made now with `timeout`: the earlier of it and the current handler's.
    func deadline(timeout: Duration?) -> ContinuousClock.Instant {
        deadline(timeout: timeout, now: .now).instant
    }

    func deadline(timeout: Duration?, now: Timestamp) -> Timestamp {
        let own = now.advanced(byNanoseconds: timeout.map(Timestamp.nanoseconds) ?? defaultTimeoutNanoseconds)
        if let inherited = CallScope.current?.deadline, inherited < own { return inherited }
        return own
    }

    /// A unary call with raw bytes. Throws ``RPCError`` for every failed outcome, ``RPCUsageError`` when neither
    /// an address nor a selector says where to send it.
    public nonisolated(nonsending) func call(_ request: Request, options: CallOptions = CallOptions()) async throws -> Response {
        var now = Timestamp.now
        let deadline = deadline(timeout: options.timeout, now: now)
        let maxRetries = min(1000, max(0, options.retries ?? configuration.retries))
        retryBudget.recordCall()
        var attempt: UInt16 = 1
        var next: Next?
        var lastError: RPCError?
        while true {
            if attempt > 1 { now = .now }
            if now >= deadline {
                throw RPCError(.deadlineExceeded, lastError.map { "deadline exceeded after \(attempt - 1) attempt(s); last: \($0.message)" }
                               ?? "deadline exceeded before the call was sent", cause: lastError)
            }
            // Where to: the given address, or the selector's next node (another one on a retry).
            let address: String
            var node: Node?
            if let a = options.address {
                address = a
            } else {
                guard let selector else {
                    throw RPCUsageError("no address given and the client has no selector: cannot tell where \(request.service) runs")
                }
                do {
                    if next == nil { next = try await selector.select(request.service, options: options.selection) }
                    let picked = try next!.next()
                    node = picked
                    address = picked.address
                } catch let e as RPCError {
                    throw e
                } catch {
                    throw lastError ?? RPCError(.unavailable, "no node of \(request.service): \(error)", cause: error, workNotStarted: true)
                }
            }
            let head = RequestHead(service: request.service, endpoint: request.endpoint, contentType: request.contentType,
                                   timeoutMicroseconds: Self.microseconds(nanoseconds: now.nanoseconds(to: deadline)), attempt: attempt,
                                   metadata: request.metadata)
            let outcome: Result<UnaryResponse, TransportError>
            do {
                outcome = .success(try await transport.unary(to: address, head: head, message: request.body, deadline: deadline))
            } catch {
                outcome = .failure(error)
            }
            let error: RPCError
            switch outcome {
            case .success(let response):
                let status = response.status
                if status == .ok {
                    if let node, let selector { selector.mark(request.service, node: node, outcome: .success(latency: now.duration(to: .now))) }
                    return Response(body: response.message ?? [], metadata: response.head.metadata)
                }
                error = RPCError(status: status, metadata: response.trailers?.metadata ?? response.head.metadata)
                    ?? RPCError(.unknown, "unexpected status \(status)")
                if let node, let selector {
                    // An application error is the node doing its job; a NACK or an unavailable node is its failure.
                    let failed = error.workNotStarted || error.code == .unavailable || error.code == .resourceExhausted
                    selector.mark(request.service, node: node, outcome: failed ? .failure(latency: now.duration(to: .now)) : .success(latency: now.duration(to: .now)))
                }
            case .failure(let transportError):
                error = RPCError(transportError)
                if let node, let selector {
                    selector.mark(request.service, node: node, outcome: transportError.code == .cancelled ? .ignored : .failure(latency: now.duration(to: .now)))
                }
            }
            guard Int(attempt) <= maxRetries, Self.isRetryable(error, idempotent: options.idempotent), !Task.isCancelled,
                  retryBudget.tryRetry() else { throw error }
            lastError = error
            // Back off, but never past the deadline or the task.
            let wake = min(ContinuousClock.now + configuration.backoff.delay(forRetry: Int(attempt)), deadline.instant)
            do {
                try await Task.sleep(until: wake, clock: .continuous)
            } catch {
                throw RPCError(.cancelled, "cancelled while waiting to retry; last: \(lastError!.message)", cause: lastError)
            }
            attempt += 1
        }
    }

    /// Whether `error` may be retried on another node.
    static func isRetryable(_ error: RPCError, idempotent: Bool) -> Bool {
        switch error.code {
        case .cancelled, .deadlineExceeded:
            return false
        default:
            break
        }
        if let t = error.cause as? TransportError, t.code == .messageTooLarge { return false }
        if error.workNotStarted { return true }
        // The outcome is unknown (the connection broke mid-call): only an idempotent call may run twice.
        return idempotent && error.code == .unavailable
    }

    /// The budget sent to the server: at least 1 µs, at most about 3,000 years (no overflow for huge timeouts).
    static func microseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        if c.seconds < 0 { return 1 }
        if c.seconds >= 100_000_000_000 { return 100_000_000_000_000_000 }
        return max(1, UInt64(c.seconds) * 1_000_000 + UInt64(c.attoseconds / 1_000_000_000_000))
    }

    /// The budget sent to the server, from nanoseconds: at least 1 µs.
    static func microseconds(nanoseconds: Int64) -> UInt64 { nanoseconds < 1000 ? 1 : UInt64(nanoseconds / 1000) }
}
