internal import MicroFraming
internal import MicroTransport

/// One endpoint of a ``Server``: what the transport calls for its requests. A class, so that the transport holds
/// it without allocating per call.
final class Route: UnaryHandler, @unchecked Sendable {
    enum Kind {
        case unary(UnaryRequestHandler)
        case stream(StreamRequestHandler)
        /// Answers every request with this error (overload).
        case refuse(Status)
        /// Answers that the request's endpoint is not served here.
        case unknownEndpoint(service: String)
    }

    let endpoint: String
    let kind: Kind
    let server: ServerCore
    /// Whether its calls count against the server's concurrency limit (health checks do not).
    let counted: Bool

    init(endpoint: String, kind: Kind, server: ServerCore, counted: Bool = true) {
        self.endpoint = endpoint
        self.kind = kind
        self.server = server
        self.counted = counted
    }

    var isStream: Bool { if case .stream = kind { true } else { false } }

    nonisolated(nonsending) func handle(_ request: UnaryRequest) async -> UnaryReply {
        switch kind {
        case .refuse(let status):
            return UnaryReply(head: ResponseHead(status: status), message: nil)
        case .unknownEndpoint(let service):
            return Self.reply(Self.unknown(request.head.endpoint, service: service))
        case .stream:
            return UnaryReply(head: ResponseHead(status: .error(code: RPCError.Code.internalError.rawValue, message: "\(endpoint) is a streaming endpoint")), message: nil)
        case .unary(let body):
            defer { if counted { server.callEnded() } }
            return await Self.run(body, request, server: server)
        }
    }

    /// Runs a unary handler for one request: deadline and content-type checks, the context bound for the
    /// handler's downstream calls, errors turned into statuses.
    static nonisolated(nonsending) func run(_ body: UnaryRequestHandler, _ request: UnaryRequest, server: ServerCore) async -> UnaryReply {
        let head = request.head
        var deadline: ContinuousClock.Instant?
        if head.timeoutMicroseconds > 0 {
            let d = request.receivedAt.advanced(by: .microseconds(Int64(min(head.timeoutMicroseconds, UInt64(Int64.max / 1000)))))
            if d <= .now {
                return Self.reply(RPCError(.deadlineExceeded, "the request arrived with its deadline already passed; not run"))
            }
            deadline = d
        }
        if server.configuration.codecs.codec(for: head.contentType) == nil {
            return Self.reply(server.configuration.codecs.unsupported(head.contentType))
        }
        let context = RPCContext(service: head.service, endpoint: head.endpoint, deadline: deadline,
                                 metadata: head.metadata, peer: request.peer, attempt: head.attempt)
        let call = Request(service: head.service, endpoint: head.endpoint, contentType: head.contentType,
                           body: request.message, metadata: head.metadata)
        do {
            let response = try await RPCContext.$current.withValue(context) { try await body(call, context) }
            return UnaryReply(head: ResponseHead(metadata: response.metadata), message: response.body)
        } catch let e as RPCError {
            return Self.reply(e)
        } catch is CancellationError {
            return Self.reply(RPCError(.cancelled, "the handler was cancelled"))
        } catch {
            return Self.reply(RPCError(.internalError, "\(error)"))
        }
    }

    static func unknown(_ endpoint: String, service: String) -> RPCError {
        RPCError(.unimplemented, "unknown endpoint \"\(endpoint)\" of service \(service)")
    }

    static func reply(_ error: RPCError) -> UnaryReply {
        UnaryReply(head: ResponseHead(status: error.status, metadata: error.metadata), message: nil)
    }
}
