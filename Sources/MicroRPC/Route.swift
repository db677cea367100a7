internal import MicroCore

/// One endpoint of a ``Server``: what the transport calls for its requests. A class, so that the transport holds
/// it without allocating per call.
final class Route: UnaryHandler, @unchecked Sendable {
    enum Kind {
        case unary(UnaryRequestHandler)
        case stream(StreamRequestHandler)
        /// Answers that the request's endpoint is not served here.
        case unknownEndpoint(service: String)
        /// Answers that the request names a service this server does not serve (a restartable NACK: the caller
        /// reached the wrong node, e.g. from a stale registry entry whose address another service now uses).
        case wrongService(served: String)
    }

    let endpoint: String
    let kind: Kind
    /// The handler of a unary route, apart from ``kind``: taking it out of the enum went through an outlined copy
    /// of the whole enum per call (about 60 instructions); this optional is read directly.
    private let unaryBody: UnaryRequestHandler?
    let server: ServerCore
    /// Whether its calls count against the server's concurrency limit (health checks do not). They are counted in
    /// and out by ``handle(_:)`` itself (``Admission``), so a request that never reaches it was never counted.
    let counted: Bool

    init(endpoint: String, kind: Kind, server: ServerCore, counted: Bool = true) {
        self.endpoint = endpoint
        self.kind = kind
        if case .unary(let body) = kind { unaryBody = body } else { unaryBody = nil }
        self.server = server
        self.counted = counted
    }

    var isStream: Bool { if case .stream = kind { true } else { false } }

    nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
        guard let body = unaryBody else { return refusal(request) }
        if counted {
            guard server.admission.tryEnter() else { return UnaryReply(head: ResponseHead(status: server.overloadStatus), message: nil) }
        }
        defer { if counted { server.admission.leave() } }
        // The checks, then the handler with its deadline bound for downstream calls; errors become statuses.
        let head = request.head
        let deadline = RPCContext.deadline(of: head, receivedAt: request.receivedAt)
        // A budget of a second or more cannot have run out between arrival and now (the handler starts in the
        // turn the request arrived in; a caller that gave up sent CANCEL): no clock read for it.
        if let deadline, head.timeoutMicroseconds < 1_000_000 && deadline <= .now {
            return Self.reply(RPCError(.deadlineExceeded, "the request arrived with its deadline already passed; not run"))
        }
        let codecs = server.configuration.codecs
        if !codecs.knows(head.contentType) { return Self.reply(codecs.unsupported(head.contentType)) }
        // The memberwise initializer: no copy of the context on its way out (see RPCContext's initializer).
        let context = RPCContext(service: head.service, endpoint: head.endpoint, deadline: deadline,
                                 metadata: head.metadata, peer: request.peer, attempt: head.attempt,
                                 credentials: request.peerCertificateSubject.map { RPCContext.Credentials(peerCertificateSubject: $0, identity: nil) },
                                 receivedAt: request.receivedAt)
        let call = Request(service: head.service, endpoint: head.endpoint, contentType: head.contentType,
                           body: request.message, metadata: head.metadata)
        // Synchronous middleware: its hooks before and after the handler's async part, not around it inside,
        // where the compiler added an executor check per call. Called on the middleware stored by its type
        // (``ServerHooks``: no copy of the chain per call).
        if server.synchronousMiddleware {
            do {
                try server.hooks.unsafelyUnwrapped.willHandle(call, context: context)
            } catch {
                return Self.reply(error)
            }
        }
        let result: Result<Response, any Error>
        do {
            if let scope = request.scope {
                // A transport worker's scope: set this call's deadline in it, no binding per call. (Never the
                // current task's scope: a transport that runs handlers in tasks it made from the caller's task,
                // as the in-memory one does, would hand this call the caller's scope.)
                scope.deadline = deadline
                defer { scope.deadline = nil }
                result = .success(try await invoke(body, call, context))
            } else {
                result = .success(try await CallScope.$current.withValue(CallScope(deadline: deadline)) {
                    try await invoke(body, call, context)
                })
            }
        } catch {
            result = .failure(error)
        }
        if server.synchronousMiddleware {
            server.hooks.unsafelyUnwrapped.didHandle(call, context: context, outcome: result)
        }
        switch result {
        case .success(let response):
            return UnaryReply(head: ResponseHead(metadata: response.metadata), message: response.body)
        case .failure(let error):
            return Self.reply(error)
        }
    }

    /// The answer to a call that ended with `error`.
    static func reply(_ error: any Error) -> UnaryReply {
        switch error {
        case let e as RPCError:
            return Self.reply(e)
        case let refusal as ServerRefusal:
            return UnaryReply(head: ResponseHead(status: refusal.status), message: nil)
        case is CancellationError:
            return Self.reply(RPCError(.cancelled, "the handler was cancelled"))
        default:
            return Self.reply(RPCError(.internalError, "\(error)"))
        }
    }

    /// The handler, through asynchronous middleware when there is some (synchronous middleware runs in
    /// ``handle(_:)``). The middleware call is kept out of line, so that the path without it stays small.
    @inline(__always)
    nonisolated(nonsending) private func invoke(_ body: UnaryRequestHandler, _ call: Request, _ context: RPCContext) async throws -> Response {
        if server.hasMiddleware && !server.synchronousMiddleware { return try await throughMiddleware(body, call, context) }
        return try await body(call, context)
    }

    @inline(never)
    nonisolated(nonsending) private func throughMiddleware(_ body: UnaryRequestHandler, _ call: Request, _ context: RPCContext) async throws -> Response {
        try await server.middleware!.intercept(call, context: context, next: body)
    }

    /// The answer of a route that does not run a unary handler.
    private func refusal(_ request: UnaryRequest) -> UnaryReply {
        UnaryReply(head: ResponseHead(status: refusalStatus(request.head)), message: nil)
    }

    /// What a route that serves nothing answers at once, without reading the request: an unknown endpoint, another
    /// service. (Never asked of a serving route.)
    func refusalStatus(_ head: RequestHead) -> Status {
        switch kind {
        case .unknownEndpoint(let service):
            return Self.unknown(head.endpoint, service: service).status
        case .wrongService(let served):
            return Self.wrongService(head.service, served: served)
        case .stream, .unary:
            return .error(.internalError, "\(endpoint) serves calls; it refuses none")
        }
    }

    static func unknown(_ endpoint: String, service: String) -> RPCError {
        RPCError(.unimplemented, "unknown endpoint \"\(endpoint)\" of service \(service)")
    }

    static func wrongService(_ service: String, served: String) -> Status {
        .nack(restartable: true, .unimplemented, "service \"\(service)\" is not served here (this node serves \(served))")
    }

    static func reply(_ error: RPCError) -> UnaryReply {
        UnaryReply(head: ResponseHead(status: error.status, metadata: error.metadata), message: nil)
    }
}
