public import MicroCore
public import MicroRPC
public import Logging

/// One log line per logical call, on the client and on the server (go-micro's log wrapper).
///
/// Client: service, endpoint, node, attempts (and hedges), status and duration, at `level` for a success and at
/// `failureLevel` for a failure. Server: service, endpoint, peer, caller identity, attempt number, status and
/// duration. A level below the logger's costs one comparison per call.
public struct LoggingMiddleware: ClientMiddleware, ServerMiddleware {
    public let logger: Logger
    public var level: Logger.Level
    public var failureLevel: Logger.Level

    public init(logger: Logger = Logger(label: "swift-micro.calls"), level: Logger.Level = .info, failureLevel: Logger.Level = .warning) {
        self.logger = logger
        self.level = level
        self.failureLevel = failureLevel
    }

    private var enabled: Bool { logger.logLevel <= max(level, failureLevel) }

    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        guard enabled else { return try await next(call) }
        var call = call
        let summary = call.summary ?? CallSummary()
        call.summary = summary
        do {
            let output = try await next(call)
            log(call, summary, status: "OK", level: level)
            return output
        } catch {
            log(call, summary, status: Self.status(error), level: failureLevel)
            throw error
        }
    }

    private func log(_ call: ClientCall, _ summary: CallSummary, status: String, level: Logger.Level) {
        let micros = call.startedAt.nanoseconds(to: .now) / 1000
        var metadata: Logger.Metadata = [
            "service": "\(call.service)", "endpoint": "\(call.endpoint)", "node": "\(summary.lastNode ?? "-")",
            "attempts": "\(summary.attempts)", "status": "\(status)", "duration_us": "\(micros)",
        ]
        if summary.hedges > 0 { metadata["hedges"] = "\(summary.hedges)" }
        logger.log(level: level, "call", metadata: metadata)
    }

    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        guard enabled else { return try await next(request, context) }
        let start = Timestamp.now
        do {
            let response = try await next(request, context)
            serve(context, start: start, status: "OK", level: level)
            return response
        } catch {
            serve(context, start: start, status: Self.status(error), level: failureLevel)
            throw error
        }
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        guard enabled else { return try await next(call) }
        let start = Timestamp.now
        do {
            try await next(call)
            serve(call.context, start: start, status: "OK", level: level)
        } catch {
            serve(call.context, start: start, status: Self.status(error), level: failureLevel)
            throw error
        }
    }

    public nonisolated(nonsending) func interceptMessage(
        _ message: BrokerMessage, topic: String, next: nonisolated(nonsending) (BrokerMessage) async throws -> Void
    ) async throws {
        guard enabled else { return try await next(message) }
        let start = Timestamp.now
        do {
            try await next(message)
            logger.log(level: level, "message", metadata: ["topic": "\(topic)", "status": "OK", "duration_us": "\(start.nanoseconds(to: .now) / 1000)"])
        } catch {
            logger.log(level: failureLevel, "message",
                       metadata: ["topic": "\(topic)", "status": "\(Self.status(error))", "duration_us": "\(start.nanoseconds(to: .now) / 1000)"])
            throw error
        }
    }

    private func serve(_ context: RPCContext, start: Timestamp, status: String, level: Logger.Level) {
        logger.log(level: level, "served", metadata: [
            "service": "\(context.service)", "endpoint": "\(context.endpoint)", "peer": "\(context.peer)",
            "identity": "\(context.identity?.name ?? "-")", "attempt": "\(context.attempt)", "status": "\(status)",
            "duration_us": "\(start.nanoseconds(to: .now) / 1000)",
        ])
    }

    /// A status as logged: the code's name and the message.
    static func status(_ error: any Error) -> String {
        switch error {
        case let e as RPCError: return "\(e.code.name): \(e.message)"
        case let r as ServerRefusal: return "NACK \(r.code.name): \(r.message)"
        default: return "\(error)"
        }
    }
}
