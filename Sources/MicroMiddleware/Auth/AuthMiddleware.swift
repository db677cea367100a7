public import MicroCore
public import MicroRPC

/// Authenticates callers and checks them against an ``AuthPolicy`` per endpoint (server middleware).
///
/// A caller is who its bearer token says (metadata `authorization: Bearer <token>`, checked by the configured
/// ``TokenVerifier``), else who its verified TLS client certificate says (mTLS: the certificate's common name),
/// else nobody. The handler finds the identity in ``RPCContext/identity``.
///
/// - A token that does not verify: UNAUTHENTICATED (even when a certificate would do: a wrong credential is not
///   silently replaced by another).
/// - No identity where the rule wants one: UNAUTHENTICATED.
/// - An identity the rule does not allow: PERMISSION_DENIED.
///
/// Health checks are always open. Broker messages are not checked (they carry no caller).
public struct AuthMiddleware: ServerMiddleware {
    public struct Configuration: Sendable {
        /// Checks bearer tokens; nil: tokens are not accepted.
        public var tokens: (any TokenVerifier)? = nil
        /// Whether a verified client certificate identifies the caller.
        public var acceptCertificates = true
        public var policy = AuthPolicy()

        public init(tokens: (any TokenVerifier)? = nil, policy: AuthPolicy = AuthPolicy()) {
            self.tokens = tokens
            self.policy = policy
        }
    }

    /// The metadata key of the token.
    public static let authorizationKey = "authorization"

    public let configuration: Configuration

    public init(_ configuration: Configuration) { self.configuration = configuration }

    public nonisolated(nonsending) func intercept(
        _ request: Request, context: RPCContext,
        next: nonisolated(nonsending) (Request, RPCContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        try authorize(&context)
        return try await next(request, context)
    }

    public nonisolated(nonsending) func interceptStream(
        _ call: ServerCallStream, next: nonisolated(nonsending) (ServerCallStream) async throws -> Void
    ) async throws {
        var call = call
        try authorize(&call.context)
        try await next(call)
    }

    /// Sets the caller's identity in `context` and checks the endpoint's rule.
    public func authorize(_ context: inout RPCContext) throws(RPCError) {
        if context.endpoint == Server.healthEndpoint { return }
        context.identity = try authenticate(context)
        switch configuration.policy.rule(for: context.endpoint) {
        case .open:
            return
        case .authenticated:
            guard context.identity != nil else { throw unauthenticated(context) }
        case .allow(let names):
            guard let identity = context.identity else { throw unauthenticated(context) }
            guard names.contains(identity.name) else {
                throw RPCError(.permissionDenied, "\(identity.name) may not call \(context.service)/\(context.endpoint)")
            }
        }
    }

    /// The caller's identity from its credentials, nil without any; throws for a token that does not verify.
    func authenticate(_ context: RPCContext) throws(RPCError) -> PeerIdentity? {
        if let header = context.metadata[Self.authorizationKey] {
            guard let tokens = configuration.tokens else {
                throw RPCError(.unauthenticated, "bearer tokens are not accepted by \(context.service)")
            }
            guard let token = Self.bearerToken(header), let identity = tokens.verify(token) else {
                throw RPCError(.unauthenticated, "the bearer token was not accepted")
            }
            return identity
        }
        if configuration.acceptCertificates, let subject = context.peerCertificateSubject {
            let name = Self.commonName(subject) ?? subject
            return PeerIdentity(name: name, method: .certificate, attributes: ["subject": subject])
        }
        return nil
    }

    private func unauthenticated(_ context: RPCContext) -> RPCError {
        RPCError(.unauthenticated, "\(context.service)/\(context.endpoint) needs an authenticated caller (bearer token or client certificate)")
    }

    /// The token of an `authorization` value "Bearer <token>" (scheme case-insensitive).
    static func bearerToken(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingPrefix(" ")
        return token.isEmpty ? nil : String(token)
    }

    /// The CN of a one-line subject ("/C=DE/O=x/CN=name").
    static func commonName(_ subject: String) -> String? {
        for part in subject.split(separator: "/") where part.hasPrefix("CN=") { return String(part.dropFirst(3)) }
        return nil
    }
}
