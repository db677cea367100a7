public import MicroCore
public import MicroRPC
public import Tracing

/// A client span per logical call and a server span per handled call (swift-distributed-tracing), with the trace
/// context carried in the call's metadata across hops.
///
/// The client starts its span as a child of the task's `ServiceContext` (so a call made from a handler continues
/// the caller's trace) and injects the span's context into the metadata with the tracer's propagation; the server
/// extracts it, starts its span as the child, and runs the handler with that context as the task's, so that the
/// handler's own calls continue the trace. With swift-otel's tracer (W3C propagation, its default) the metadata
/// carries `traceparent` and `tracestate`.
///
/// Attributes: `rpc.system` (`micro`), `rpc.service`, `rpc.method`, `micro.deadline_us` (the budget left when the
/// span began), `micro.attempts` (client: attempts made, `micro.hedges` when any) or `micro.attempt` (server: the
/// request's attempt number), `rpc.status_code` and, for a failure, the error.
public struct TracingMiddleware: ClientMiddleware, ServerMiddleware {
    let tracer: any Tracer

    /// `tracer`: nil is the bootstrapped one (`InstrumentationSystem.tracer`), read when the middleware is made.
    public init(tracer: (any Tracer)? = nil) {
        self.tracer = tracer ?? InstrumentationSystem.tracer
    }

    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        let span = tracer.startSpan("\(call.service)/\(call.endpoint)", context: ServiceContext.current ?? .topLevel, ofKind: .client)
        defer { span.end() }
        span.attributes["rpc.system"] = "micro"
        span.attributes["rpc.service"] = call.service
        span.attributes["rpc.method"] = call.endpoint
        span.attributes["micro.deadline_us"] = Int(call.startedAt.nanoseconds(to: call.deadline) / 1000)
        var call = call
        tracer.inject(span.context, into: &call.metadata, using: MetadataInjector())
        let summary = call.summary ?? CallSummary()
        call.summary = summary
        do {
            let output = try await next(call)
            ended(span, summary, code: .ok)
            return output
        } catch {
            ended(span, summary, code: MetricsMiddleware.code(error))
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error, message: "\(error)"))
            throw error
        }
    }

    private func ended(_ span: any Span, _ summary: CallSummary, code: StatusCode) {
        span.attributes["micro.attempts"] = summary.attempts
        if summary.hedges > 0 { span.attributes["micro.hedges"] = summary.hedges }
        if let node = summary.lastNode { span.attributes["micro.node"] = node }
        span.attributes["rpc.status_code"] = Int(code.rawValue)
    }

    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        let span = serverSpan(context)
        defer { span.end() }
        do {
            let response = try await ServiceContext.$current.withValue(span.context) { try await next(request, context) }
            span.attributes["rpc.status_code"] = 0
            return response
        } catch {
            failed(span, error)
            throw error
        }
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        let span = serverSpan(call.context)
        defer { span.end() }
        do {
            try await ServiceContext.$current.withValue(span.context) { try await next(call) }
            span.attributes["rpc.status_code"] = 0
        } catch {
            failed(span, error)
            throw error
        }
    }

    private func serverSpan(_ context: RPCContext) -> any Span {
        var parent = ServiceContext.topLevel
        tracer.extract(context.metadata, into: &parent, using: MetadataExtractor())
        let span = tracer.startSpan("\(context.service)/\(context.endpoint)", context: parent, ofKind: .server)
        span.attributes["rpc.system"] = "micro"
        span.attributes["rpc.service"] = context.service
        span.attributes["rpc.method"] = context.endpoint
        span.attributes["micro.attempt"] = Int(context.attempt)
        if let remaining = context.deadline.map({ Timestamp.now.nanoseconds(to: $0) / 1000 }) { span.attributes["micro.deadline_us"] = Int(remaining) }
        if let identity = context.identity { span.attributes["enduser.id"] = identity.name }
        return span
    }

    private func failed(_ span: any Span, _ error: any Error) {
        span.attributes["rpc.status_code"] = Int(MetricsMiddleware.code(error).rawValue)
        span.recordError(error)
        span.setStatus(SpanStatus(code: .error, message: "\(error)"))
    }
}

/// Writes trace context into call metadata (replacing a value of the same key).
public struct MetadataInjector: Injector {
    public init() {}
    public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) { carrier[key] = value }
}

/// Reads trace context from call metadata.
public struct MetadataExtractor: Extractor {
    public init() {}
    public func extract(key: String, from carrier: Metadata) -> String? { carrier[key] }
}
