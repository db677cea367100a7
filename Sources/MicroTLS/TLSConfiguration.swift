/// TLS settings for one side of a connection. Every property has a safe default: TLS 1.2 at least (1.3
/// preferred), and in TLS 1.2 only ECDHE key exchange with AEAD ciphers (``tls12Ciphers``); peer verification on
/// for clients, and the protocol's own ALPN identifier. Set ``minimumVersion`` to `.tls13` for TLS 1.3 alone.
public struct TLSConfiguration: Sendable {
    /// Where PEM data comes from.
    public enum PEMSource: Sendable, Equatable {
        case file(String)
        case bytes([UInt8])
    }

    /// Trusted certificate authorities.
    public enum TrustRoots: Sendable, Equatable {
        /// The operating system's store (OpenSSL's default paths).
        case system
        /// A PEM file of CA certificates.
        case file(String)
        /// A directory of hashed CA certificates (`c_rehash`).
        case directory(String)
        /// PEM bytes of CA certificates.
        case pem([UInt8])
    }

    /// How the peer's certificate is checked.
    public enum Verification: Sendable, Equatable {
        /// Chain and (on the client) host name are verified. The default for clients.
        case fullVerification
        /// Chain verified, host name not.
        case noHostnameVerification
        /// Nothing is verified: anyone can impersonate the peer. Explicit, and logged loudly when used.
        case none
    }

    /// Our certificate chain (leaf first). Required on servers; on clients, for mTLS.
    public var certificateChain: PEMSource?
    /// The private key for `certificateChain`.
    public var privateKey: PEMSource?
    public var trustRoots: TrustRoots = .system
    /// Client: how the server is verified. Server: how client certificates are verified when sent.
    public var verification: Verification = .fullVerification
    /// Server: refuse clients without a valid certificate (mTLS).
    public var requireClientCertificate = false
    /// The lowest version accepted: TLS 1.2 unless raised to 1.3.
    public var minimumVersion: Version = .tls12
    /// ALPN protocols offered (client) or accepted (server), most preferred first.
    public var applicationProtocols: [String] = ["micro/1"]
    /// Client: the name sent as SNI and checked against the certificate; defaults to the dialled host.
    public var serverName: String?
    /// A connection whose handshake takes longer is closed (a silent client cannot hold a descriptor).
    public var handshakeTimeoutMilliseconds: UInt64 = 10_000
    /// After a burst of handshakes on a loop (at least 128), once none has started for a second, the memory they
    /// freed is given back to the system (`malloc_trim`). Every handshake in flight holds ~30 KB that OpenSSL frees
    /// when it ends; freed between long-lived blocks, it would stay resident: with 256 handshakes in flight,
    /// ~7 MB, or ~400 B more for each connection that stays.
    public var returnsMemoryAfterHandshakeBursts = true

    public enum Version: Sendable, Equatable { case tls12, tls13 }

    /// The TLS 1.2 cipher suites offered and accepted (OpenSSL's syntax): forward secrecy and AEAD only, i.e.
    /// ECDHE-ECDSA/ECDHE-RSA with AES-128/256-GCM or ChaCha20-Poly1305. TLS 1.3 suites are not affected.
    public static let tls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20"

    public init() {}

    /// A server configuration with a certificate chain and key from PEM files.
    public static func server(certificateFile: String, keyFile: String) -> TLSConfiguration {
        var c = TLSConfiguration()
        c.certificateChain = .file(certificateFile)
        c.privateKey = .file(keyFile)
        c.verification = .noHostnameVerification
        return c
    }

    /// A client configuration trusting the CAs in `caFile` (or the system store).
    public static func client(trusting caFile: String? = nil) -> TLSConfiguration {
        var c = TLSConfiguration()
        if let caFile { c.trustRoots = .file(caFile) }
        return c
    }
}
