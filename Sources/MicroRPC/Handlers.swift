internal import MicroCore
/// A unary handler of raw requests. `nonisolated(nonsending)`: it runs on the transport's loop (its caller's
/// executor) with no executor switch. Throw ``RPCError`` to answer with its code; any other error answers
/// `internalError`.
public typealias UnaryRequestHandler = nonisolated(nonsending) @Sendable (Request, RPCContext) async throws -> Response

/// A streaming handler: receives and sends on ``ServerCallStream`` until it returns (the call ends OK) or throws
/// (the call ends with the error's status).
public typealias StreamRequestHandler = @Sendable (ServerCallStream) async throws -> Void

/// A typed unary handler: the request decoded as `Req`, the result encoded back, with the request's codec.
public typealias TypedUnaryHandler<Req, Res> = nonisolated(nonsending) @Sendable (Req, RPCContext) async throws -> Res
