/// Why a TLS connection failed. Each case is a distinct, readable outcome for the caller and for logs.
public struct TLSError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The peer's certificate is not signed by a trusted authority.
        case untrustedCertificate
        /// The peer's certificate is expired or not yet valid.
        case expiredCertificate
        /// The certificate does not name the host that was dialled.
        case hostnameMismatch
        /// The server requires a client certificate and none was sent.
        case missingClientCertificate
        /// No protocol version or cipher both sides accept (e.g. a TLS 1.1-only peer).
        case protocolMismatch
        /// The bytes received are not TLS (e.g. plain text or garbage instead of a ClientHello).
        case notTLS
        /// The peer ended the connection before the handshake completed, or without close_notify.
        case unexpectedEOF
        /// The handshake did not complete in time.
        case handshakeTimeout
        /// The configuration is unusable: a missing or malformed certificate or key file, a key that does not
        /// match the certificate.
        case badConfiguration
        /// Any other failure reported by OpenSSL or the peer (an alert).
        case handshakeFailed
    }

    public var kind: Kind
    /// OpenSSL's own words, for logs.
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "TLS \(kind): \(message)" }
}
