public import MicroRPC

/// Sends a bearer token with every call (client middleware): metadata `authorization: Bearer <token>`, what
/// ``AuthMiddleware`` checks. The token is read per call from `token`, so that it can be rotated.
public struct BearerTokenMiddleware: ClientMiddleware {
    let token: @Sendable () -> String

    public init(token: @escaping @Sendable () -> String) { self.token = token }

    public init(_ token: String) { self.token = { token } }

    public nonisolated(nonsending) func intercept(
        _ call: ClientCall, next: nonisolated(nonsending) (ClientCall) async throws -> ClientOutput
    ) async throws -> ClientOutput {
        var call = call
        call.metadata[AuthMiddleware.authorizationKey] = "Bearer \(token())"
        return try await next(call)
    }
}
