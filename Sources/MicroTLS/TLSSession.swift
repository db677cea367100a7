internal import COpenSSL
import Glibc

/// One TLS connection's OpenSSL state, with no socket: ciphertext in and out, plaintext in and out. The caller
/// feeds what it read from the socket and writes what the session emits.
///
/// Bytes pass through a ``TLSIO``, which stores nothing between calls: ciphertext is read where the caller has
/// it, output is written into the caller's scratch buffer and emitted before the call returns (and before any
/// plaintext is delivered). An idle session holds only OpenSSL's own state (`SSL_MODE_RELEASE_BUFFERS` frees
/// the record buffers).
///
/// Not thread-safe: confine a session, and its ``TLSIO``, to one thread (its connection's loop); every mutable
/// field below is confined to it. OpenSSL's error queue is per thread and is cleared before each call.
///
/// Open (though nothing in it can be overridden) so that a connection transform can be the session itself, with
/// its own fields in the same object: one allocation less per connection.
open class TLSSession {
    // 42 bytes: the BIO is reached through the SSL, not kept here, and what few sessions need is boxed (a
    // TLSTransform adds 8 and fits a 64-byte block).
    public let context: TLSContext
    let ssl: OpaquePointer
    /// A client's cache key and a failure, out of line: nil for a healthy server session.
    private var rare: Rare?
    public private(set) var isHandshakeComplete = false
    /// The peer sent close_notify.
    public private(set) var receivedCloseNotify = false

    private final class Rare {
        var error: TLSError?
        let cacheKey: String
        init(error: TLSError?, cacheKey: String) {
            self.error = error
            self.cacheKey = cacheKey
        }
    }
    /// Why the session failed, if it did.
    private var failed: TLSError? {
        get { rare?.error }
        set {
            if let rare {
                rare.error = newValue
            } else if let newValue {
                rare = Rare(error: newValue, cacheKey: "")
            }
        }
    }
    /// Client: the key its sessions are cached under (the server name); empty for a server.
    var cacheKey: String { rare?.cacheKey ?? "" }

    /// - Parameter serverName: client only: the host dialled; sent as SNI (unless an IP address) and verified
    ///   against the certificate (unless verification says otherwise).
    /// - Parameter io: the BIO shared by the sessions of this thread; nil makes one for this session alone.
    public init(context: TLSContext, serverName: String? = nil, io: TLSIO? = nil) throws(TLSError) {
        self.context = context
        guard let ssl = SSL_new(context.ctx) else { throw TLSError(.badConfiguration, "SSL_new failed: \(TLSContext.drainErrors())") }
        self.ssl = ssl
        let io = io ?? TLSIO()
        let cacheKey = context.role == .client ? context.configuration.serverName ?? serverName ?? "" : ""
        if !cacheKey.isEmpty { rare = Rare(error: nil, cacheKey: cacheKey) }
        // Only the client's new-session callback looks the session up (ex_data costs two allocations per SSL).
        if context.role == .client { _ = micro_ssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque()) }
        // One reference for the SSL, which uses the BIO both ways (and frees its references in SSL_free).
        BIO_up_ref(io.bio)
        SSL_set_bio(ssl, io.bio, io.bio)
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let cached = context.takeSession(for: cacheKey) {
                SSL_set_session(ssl, cached)
                SSL_SESSION_free(cached)
            }
            let name = context.configuration.serverName ?? serverName
            if let name, !name.isEmpty {
                let isIP = Self.isIPAddress(name)
                if !isIP { _ = micro_ssl_set_sni(ssl, name) }
                if context.configuration.verification == .fullVerification {
                    if isIP {
                        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                    } else {
                        SSL_set1_host(ssl, name)
                    }
                }
            }
        }
    }

    /// Whether this session reads and writes through `io`.
    public func uses(_ io: TLSIO) -> Bool { SSL_get_rbio(ssl) == io.bio }

    deinit {
        // Freeing an SSL that never sent close_notify marks its session not resumable; a connection that ended
        // without a TLS error keeps its session (ticket) usable for the next one.
        if isHandshakeComplete && failed == nil { SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN) }
        SSL_free(ssl)
    }

    static func isIPAddress(_ s: String) -> Bool {
        var a4 = in_addr()
        var a6 = in6_addr()
        return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1
    }

    /// The ALPN protocol agreed on, if any.
    public var negotiatedProtocol: String? {
        var p: UnsafePointer<UInt8>?
        var n: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &p, &n)
        guard let p, n > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(n)), as: UTF8.self)
    }

    /// The negotiated protocol version, e.g. "TLSv1.3".
    public var version: String { String(cString: SSL_get_version(ssl)) }

    /// Whether this session resumed an earlier one.
    public var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// The subject of the peer's certificate, one line, if it sent one.
    public var peerSubject: String? {
        guard let cert = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(cert) }
        var buf = [CChar](repeating: 0, count: 512)
        X509_NAME_oneline(X509_get_subject_name(cert), &buf, Int32(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The subject of the peer's certificate when the handshake verified it (mTLS on a server); nil when the peer
    /// sent none or it was not verified.
    public var verifiedPeerSubject: String? {
        // Only when the peer was asked for a certificate and it verified (VERIFY_NONE reports OK without checking).
        guard SSL_get_verify_mode(ssl) & micro_verify_peer() != 0, SSL_get_verify_result(ssl) == X509_V_OK else { return nil }
        return peerSubject
    }

    /// Client: produces the ClientHello. Call once, then write what `emit` gets.
    public func start(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
        guard context.role == .client else { return }
        var none = UnsafeRawBufferPointer(start: nil, count: 0)
        try handshake(&none, out: scratch, emit: emit)
    }

    /// Feeds ciphertext read from the socket (all of it is consumed). Plaintext goes to `deliver` (valid during
    /// the call, in the first half of `scratch`); TLS output (handshake messages, alerts, tickets) goes to
    /// `emit`, to be written to the socket, always before the plaintext that follows it is delivered.
    public func receive(
        _ ciphertext: UnsafeRawBufferPointer,
        scratch: UnsafeMutableRawBufferPointer,
        deliver: (UnsafeRawBufferPointer) -> Void,
        emit: (UnsafeRawBufferPointer) -> Void
    ) throws(TLSError) {
        if let failed { throw failed }
        precondition(scratch.count >= 2, "a TLS session needs scratch space")
        // SSL_read returns at most one record (16 KiB) at a time: half the scratch for plaintext, half for output.
        let half = scratch.count / 2
        let plain = UnsafeMutableRawBufferPointer(rebasing: scratch[..<half])
        let out = UnsafeMutableRawBufferPointer(rebasing: scratch[half...])
        var input = ciphertext
        if !isHandshakeComplete {
            try handshake(&input, out: out, emit: emit)
            if !isHandshakeComplete { return }
        }
        while true {
            let (n, e) = step(&input, out: out, emit: emit) { SSL_read(ssl, plain.baseAddress, Int32(plain.count)) }
            if n > 0 {
                deliver(UnsafeRawBufferPointer(start: plain.baseAddress, count: Int(n)))
                continue
            }
            if e == SSL_ERROR_WANT_WRITE { continue }  // `out` was full and is emitted: go on
            if e == SSL_ERROR_WANT_READ { break }  // every byte consumed
            if e == SSL_ERROR_ZERO_RETURN {
                receivedCloseNotify = true
                break
            }
            let error = classify(e)
            failed = error
            throw error
        }
    }

    /// Encrypts `plaintext` (in one SSL_write: one or a few records, never one per frame) and emits the
    /// ciphertext. Only after the handshake completed.
    public func send(_ plaintext: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
        if let failed { throw failed }
        precondition(isHandshakeComplete, "send before the handshake completed")
        precondition(scratch.count > 0, "a TLS session needs scratch space")
        var none = UnsafeRawBufferPointer(start: nil, count: 0)
        var offset = 0
        while offset < plaintext.count {
            let count = Int32(min(plaintext.count - offset, Int(Int32.max)))
            let (n, e) = step(&none, out: scratch, emit: emit) { SSL_write(ssl, plaintext.baseAddress! + offset, count) }
            if n > 0 {
                offset += Int(n)
                continue
            }
            // The scratch filled up and was emitted: the same write again, as OpenSSL requires.
            if e == SSL_ERROR_WANT_WRITE { continue }
            let error = classify(e)
            failed = error
            throw error
        }
    }

    /// Sends close_notify.
    public func close(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        guard failed == nil, scratch.count > 0 else { return }
        var none = UnsafeRawBufferPointer(start: nil, count: 0)
        while true {
            let (rc, e) = step(&none, out: scratch, emit: emit) { SSL_shutdown(ssl) }
            if rc < 0 && e == SSL_ERROR_WANT_WRITE { continue }
            break
        }
    }

    /// Drives the handshake until it completes or needs more input.
    private func handshake(_ input: inout UnsafeRawBufferPointer, out: UnsafeMutableRawBufferPointer,
                           emit: (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
        while true {
            let (rc, e) = step(&input, out: out, emit: emit) { SSL_do_handshake(ssl) }
            if rc == 1 {
                isHandshakeComplete = true
                return
            }
            if e == SSL_ERROR_WANT_WRITE { continue }
            if e == SSL_ERROR_WANT_READ { return }
            let error = classify(e)  // the alert for the peer has been emitted
            failed = error
            throw error
        }
    }

    /// One SSL call reading from `input` (advanced past what it consumed) and writing into `out`; what it wrote
    /// goes to `emit` at once. Returns the call's result and, unless positive, its SSL_get_error code; the
    /// error queue is left for ``classify(_:)``.
    @inline(__always)
    private func step(_ input: inout UnsafeRawBufferPointer, out: UnsafeMutableRawBufferPointer,
                      emit: (UnsafeRawBufferPointer) -> Void, _ op: () -> Int32) -> (Int32, Int32) {
        ERR_clear_error()
        let (result, written) = TLSIO.run(micro_io_state_of(ssl), input: &input, output: out) { () -> (Int32, Int32) in
            let rc = op()
            return (rc, rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc))
        }
        if written > 0 { emit(UnsafeRawBufferPointer(start: out.baseAddress, count: written)) }
        return result
    }

    /// Turns OpenSSL's verdict into a ``TLSError`` with a distinct kind.
    private func classify(_ sslError: Int32) -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        var reasons: [Int32] = []
        var texts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            reasons.append(micro_err_reason(e))
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            texts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let text = texts.isEmpty ? "SSL error \(sslError)" : texts.joined(separator: "; ")
        if verify != X509_V_OK && reasons.contains(SSL_R_CERTIFICATE_VERIFY_FAILED) {
            let why = String(cString: X509_verify_cert_error_string(verify))
            switch Int32(verify) {
            case X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID:
                return TLSError(.expiredCertificate, why)
            case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
                return TLSError(.hostnameMismatch, why)
            default:
                return TLSError(.untrustedCertificate, why)
            }
        }
        for r in reasons {
            switch r {
            case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE, SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
                return TLSError(.missingClientCertificate, text)
            case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_NO_PROTOCOLS_AVAILABLE, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION,
                 SSL_R_NO_SHARED_CIPHER, SSL_R_VERSION_TOO_LOW:
                return TLSError(.protocolMismatch, text)
            case SSL_R_WRONG_VERSION_NUMBER, SSL_R_HTTP_REQUEST, SSL_R_PACKET_LENGTH_TOO_LONG, SSL_R_UNKNOWN_PROTOCOL:
                return TLSError(.notTLS, text)
            case SSL_R_UNEXPECTED_EOF_WHILE_READING:
                return TLSError(.unexpectedEOF, text)
            case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
                return TLSError(.expiredCertificate, "the peer rejected our certificate as expired: \(text)")
            case SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
                return TLSError(.untrustedCertificate, "the peer rejected our certificate: \(text)")
            default:
                continue
            }
        }
        if sslError == SSL_ERROR_SYSCALL || sslError == SSL_ERROR_ZERO_RETURN {
            return TLSError(.unexpectedEOF, text)
        }
        return TLSError(.handshakeFailed, text)
    }
}
