/// Who called, as an authenticating middleware established it (``RPCContext/identity``).
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// How the caller proved who it is.
    public enum Method: Sendable, Hashable {
        /// A bearer token in the call's metadata.
        case bearerToken
        /// A TLS client certificate the server verified (mTLS).
        case certificate
        /// Another way, named by the middleware that used it.
        case other(String)
    }

    /// The caller's name (a token's subject, a certificate's common name), which policies match.
    public var name: String
    public var method: Method
    /// What else the authenticator learned (roles, scopes, the certificate's whole subject).
    public var attributes: [String: String]

    public init(name: String, method: Method, attributes: [String: String] = [:]) {
        self.name = name
        self.method = method
        self.attributes = attributes
    }

    public var description: String { name }
}
