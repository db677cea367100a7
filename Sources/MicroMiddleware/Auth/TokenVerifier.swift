public import MicroRPC

/// Checks a bearer token and says whose it is. Called on the event loop for every call that carries a token:
/// it must not block (verify a signature or look the token up in memory; refresh caches elsewhere).
public protocol TokenVerifier: Sendable {
    /// The identity the token proves, or nil when it proves nothing (unknown, expired, malformed).
    func verify(_ token: String) -> PeerIdentity?
}

/// A fixed table of tokens and their owners (service accounts, tests).
public struct StaticTokenVerifier: TokenVerifier {
    public let tokens: [String: PeerIdentity]

    /// `tokens`: token -> name of its owner.
    public init(_ tokens: [String: String]) {
        self.tokens = tokens.mapValues { PeerIdentity(name: $0, method: .bearerToken) }
    }

    public init(identities: [String: PeerIdentity]) { tokens = identities }

    public func verify(_ token: String) -> PeerIdentity? { tokens[token] }
}
