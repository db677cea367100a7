import MicroCore
public import MicroRPC
public import CoreMetrics
import Synchronization

/// Calls, errors by code, latency, in-flight calls, retries, hedges and NACKs through swift-metrics, labelled by
/// service and endpoint (client and server middleware). Bootstrap a backend (Prometheus, StatsD, OTel) with
/// `MetricsSystem.bootstrap`; without one, nothing is recorded.
///
/// | metric | kind | side |
/// | --- | --- | --- |
/// | `micro_client_calls_total`, `micro_server_calls_total` | counter | logical calls ended |
/// | `micro_client_errors_total`, `micro_server_errors_total` (+ `code`) | counter | calls ended with an error |
/// | `micro_client_call_duration`, `micro_server_call_duration` | timer | a logical call (client), a handler (server) |
/// | `micro_client_attempt_duration` | timer | one attempt |
/// | `micro_client_in_flight`, `micro_server_in_flight` | meter | calls under way |
/// | `micro_client_retries_total`, `micro_client_hedges_total` | counter | extra attempts |
/// | `micro_client_nacks_total`, `micro_server_nacks_total` | counter | NACKs received / sent |
///
/// Elsewhere: `micro_circuit_breaker_state` (``CircuitBreakerMiddleware``), `micro_selector_ejections_total`
/// (the registry selector), `micro_pool_connections` and `micro_pool_waiters` (the libuv transport).
///
/// The handles of an endpoint are made once and kept (no lock and no hashing when a call names the endpoint the
/// previous one named). Not promised: bounded memory when callers name unboundedly many endpoints (a server only
/// counts endpoints it serves).
public struct MetricsMiddleware: ClientMiddleware, ServerMiddleware {
    let client: HandleCache
    let server: HandleCache

    public init(factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        client = HandleCache(side: "client", factory: factory)
        server = HandleCache(side: "server", factory: factory)
    }

    // MARK: client

    /// Synchronous on the client: calls and attempts are counted before and after, with no async level.
    public var callsSynchronously: Bool { true }

    public func willCall(_ call: ClientCall) throws {
        client.withHandles(call.service, call.endpoint) { $0.inFlight.increment(by: 1) }
    }

    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) {
        client.withHandles(call.service, call.endpoint) { h in
            h.inFlight.decrement(by: 1)
            h.calls.increment(by: 1)
            h.duration.recordNanoseconds(call.startedAt.nanoseconds(to: .now))
            if case .failure(let error) = outcome { h.error(Self.code(error)).increment(by: 1) }
        }
    }

    public func willAttempt(_ attempt: ClientAttempt) throws {
        // A first attempt counts nothing here: no lookup for it.
        if attempt.isHedge {
            client.withHandles(attempt.service, attempt.endpoint) { $0.hedges.increment(by: 1) }
        } else if attempt.number > 1 {
            client.withHandles(attempt.service, attempt.endpoint) { $0.retries.increment(by: 1) }
        }
    }

    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        client.withHandles(attempt.service, attempt.endpoint) { h in
            h.attemptDuration!.recordNanoseconds(attempt.startedAt.nanoseconds(to: .now))
            // A NACK the server sent (not one made here, which has a cause).
            if case .failure(let e as RPCError) = outcome, e.workNotStarted && e.cause == nil { h.nacks.increment(by: 1) }
        }
    }

    // MARK: server

    /// Synchronous on the server: unary calls are counted before and after their handler, with no async level.
    public var handlesSynchronously: Bool { true }

    public func willHandle(_ request: Request, context: RPCContext) throws {
        server.withHandles(context.service, context.endpoint) { $0.inFlight.increment(by: 1) }
    }

    public func didHandle(_ request: Request, context: RPCContext, outcome: Result<Response, any Error>) {
        let start = context.receivedAt
        let failure: (any Error)? = if case .failure(let error) = outcome { error } else { nil }
        server.withHandles(context.service, context.endpoint) { h in
            h.inFlight.decrement(by: 1)
            if let failure {
                served(h, start: start, error: failure)
            } else {
                h.calls.increment(by: 1)
                h.duration.recordNanoseconds(start.nanoseconds(to: .now))
            }
        }
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        let h = server.withHandles(call.context.service, call.context.endpoint) { $0 }
        let start = call.context.receivedAt
        h.inFlight.increment(by: 1)
        defer { h.inFlight.decrement(by: 1) }
        do {
            try await next(call)
            h.calls.increment(by: 1)
            h.duration.recordNanoseconds(start.nanoseconds(to: .now))
        } catch {
            served(h, start: start, error: error)
            throw error
        }
    }

    private func served(_ h: Handles, start: Timestamp, error: any Error) {
        h.calls.increment(by: 1)
        h.duration.recordNanoseconds(start.nanoseconds(to: .now))
        h.error(Self.code(error)).increment(by: 1)
        if error is ServerRefusal { h.nacks.increment(by: 1) }
    }

    /// The code an error reports to the caller.
    static func code(_ error: any Error) -> StatusCode {
        switch error {
        case let e as RPCError: return e.code
        case let r as ServerRefusal: return r.code
        case is CancellationError: return .cancelled
        default: return .internalError
        }
    }
}

extension MetricsMiddleware {
    /// The metric handles of one endpoint of one service.
    final class Handles: Sendable {
        let side: String
        let service: String
        let endpoint: String
        let factory: any MetricsFactory
        let calls: Counter
        let duration: CoreMetrics.Timer
        let attemptDuration: CoreMetrics.Timer?
        let inFlight: Meter
        let retries: Counter
        let hedges: Counter
        let nacks: Counter
        /// Error counters by code, made on first use. Guarded by its mutex.
        private let errors = Mutex<[UInt32: Counter]>([:])

        init(side: String, service: String, endpoint: String, factory: any MetricsFactory) {
            self.side = side
            self.service = service
            self.endpoint = endpoint
            self.factory = factory
            let d = [("service", service), ("endpoint", endpoint)]
            calls = Counter(label: "micro_\(side)_calls_total", dimensions: d, factory: factory)
            duration = CoreMetrics.Timer(label: "micro_\(side)_call_duration", dimensions: d, factory: factory)
            attemptDuration = side == "client" ? CoreMetrics.Timer(label: "micro_client_attempt_duration", dimensions: d, factory: factory) : nil
            inFlight = Meter(label: "micro_\(side)_in_flight", dimensions: d, factory: factory)
            retries = Counter(label: "micro_\(side)_retries_total", dimensions: d, factory: factory)
            hedges = Counter(label: "micro_\(side)_hedges_total", dimensions: d, factory: factory)
            nacks = Counter(label: "micro_\(side)_nacks_total", dimensions: d, factory: factory)
        }

        func error(_ code: StatusCode) -> Counter {
            errors.withLock { errors in
                if let c = errors[code.rawValue] { return c }
                let c = Counter(label: "micro_\(side)_errors_total",
                                dimensions: [("service", service), ("endpoint", endpoint), ("code", code.name)], factory: factory)
                errors[code.rawValue] = c
                return c
            }
        }
    }

    /// Handles by service and endpoint, made once (``EndpointTable``: the endpoint of the previous call is found
    /// without a lock).
    final class HandleCache: Sendable {
        private let table: EndpointTable<Handles>

        init(side: String, factory: any MetricsFactory) {
            table = EndpointTable { service, endpoint in
                Handles(side: side, service: service, endpoint: endpoint, factory: factory)
            }
        }

        @inline(__always)
        func withHandles<R>(_ service: String, _ endpoint: String, _ body: (Handles) -> R) -> R {
            table.withValue(service, endpoint, body)
        }
    }
}
