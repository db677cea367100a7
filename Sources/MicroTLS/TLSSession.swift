internal import COpenSSL
import Glibc

/// One TLS connection's OpenSSL state over memory BIOs: ciphertext in and out, plaintext in and out, no socket.
/// The caller feeds what it read from the socket and writes what the session emits.
///
/// Not thread-safe: confine a session to one thread (its connection's loop). OpenSSL's error queue is per
/// thread and is cleared before each call.
public final class TLSSession {
    public let context: TLSContext
    let ssl: OpaquePointer
    /// The memory BIOs. ``releaseBuffersIfIdle()`` frees them on an idle connection (about 1.8 KB); they come back
    /// with the next byte in either direction.
    private var rbio: OpaquePointer?
    private var wbio: OpaquePointer?
    public private(set) var isHandshakeComplete = false
    /// The peer sent close_notify.
    public private(set) var receivedCloseNotify = false
    private var failed: TLSError?
    /// Client: the key its sessions are cached under (the server name).
    let cacheKey: String

    /// - Parameter serverName: client only: the host dialled; sent as SNI (unless an IP address) and verified
    ///   against the certificate (unless verification says otherwise).
    public init(context: TLSContext, serverName: String? = nil) throws(TLSError) {
        self.context = context
        guard let ssl = SSL_new(context.ctx) else { throw TLSError(.badConfiguration, "SSL_new failed: \(TLSContext.drainErrors())") }
        self.ssl = ssl
        cacheKey = context.configuration.serverName ?? serverName ?? ""
        _ = micro_ssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
        attachBIOs()
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

    deinit {
        // Freeing an SSL that never sent close_notify marks its session not resumable; a connection that ended
        // without a TLS error keeps its session (ticket) usable for the next one.
        if isHandshakeComplete && failed == nil { SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN) }
        SSL_free(ssl)
    }

    private func attachBIOs() {
        guard rbio == nil else { return }
        let r = BIO_new(BIO_s_mem())
        let w = BIO_new(BIO_s_mem())
        SSL_set_bio(ssl, r, w)  // the SSL owns both BIOs now
        rbio = r
        wbio = w
    }

    /// Frees the memory BIOs when the handshake is done and nothing is buffered in them. Call it for
    /// connections that have been idle for a while (not after every read: re-creating them costs CPU).
    /// Returns whether they were freed.
    @discardableResult
    public func releaseBuffersIfIdle() -> Bool {
        guard isHandshakeComplete, failed == nil, let r = rbio, let w = wbio,
              micro_bio_pending(r) == 0, micro_bio_pending(w) == 0 else { return false }
        SSL_set_bio(ssl, nil, nil)  // frees both
        rbio = nil
        wbio = nil
        return true
    }

    /// Whether the memory BIOs are currently allocated.
    public var holdsBuffers: Bool { rbio != nil }

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

    /// Client: produces the ClientHello. Call once, then write what `emit` gets.
    public func start(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
        attachBIOs()
        if context.role == .client { try handshake() }
        drain(scratch: scratch, emit: emit)
    }

    /// Feeds ciphertext read from the socket. Plaintext goes to `deliver` (valid during the call); TLS output
    /// (handshake messages, alerts, tickets) goes to `emit`, to be written to the socket.
    public func receive(
        _ ciphertext: UnsafeRawBufferPointer,
        scratch: UnsafeMutableRawBufferPointer,
        deliver: (UnsafeRawBufferPointer) -> Void,
        emit: (UnsafeRawBufferPointer) -> Void
    ) throws(TLSError) {
        if let failed { throw failed }
        attachBIOs()
        if ciphertext.count > 0 { BIO_write(rbio, ciphertext.baseAddress, Int32(ciphertext.count)) }
        if !isHandshakeComplete {
            do {
                try handshake()
            } catch {
                drain(scratch: scratch, emit: emit)  // the alert for the peer
                throw error
            }
            if !isHandshakeComplete {
                drain(scratch: scratch, emit: emit)
                return
            }
        }
        while true {
            ERR_clear_error()
            let n = SSL_read(ssl, scratch.baseAddress, Int32(scratch.count))
            if n > 0 {
                deliver(UnsafeRawBufferPointer(start: scratch.baseAddress, count: Int(n)))
                continue
            }
            let e = SSL_get_error(ssl, n)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { break }
            if e == SSL_ERROR_ZERO_RETURN {
                receivedCloseNotify = true
                break
            }
            let error = classify(e)
            failed = error
            drain(scratch: scratch, emit: emit)
            throw error
        }
        drain(scratch: scratch, emit: emit)
    }

    /// Encrypts `plaintext` (in one SSL_write: one or a few records, never one per frame) and emits the
    /// ciphertext. Only after the handshake completed.
    public func send(_ plaintext: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws(TLSError) {
        if let failed { throw failed }
        precondition(isHandshakeComplete, "send before the handshake completed")
        attachBIOs()
        var offset = 0
        while offset < plaintext.count {
            ERR_clear_error()
            let n = SSL_write(ssl, plaintext.baseAddress! + offset, Int32(min(plaintext.count - offset, Int(Int32.max))))
            if n <= 0 {
                let error = classify(SSL_get_error(ssl, n))
                failed = error
                throw error
            }
            offset += Int(n)
            // Keep the ciphertext buffer bounded for large writes.
            if let w = wbio, micro_bio_pending(w) > 1 << 20 { drain(scratch: scratch, emit: emit) }
        }
        drain(scratch: scratch, emit: emit)
    }

    /// Sends close_notify.
    public func close(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        guard failed == nil else { return }
        attachBIOs()
        ERR_clear_error()
        SSL_shutdown(ssl)
        drain(scratch: scratch, emit: emit)
    }

    private func handshake() throws(TLSError) {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            isHandshakeComplete = true
            return
        }
        let e = SSL_get_error(ssl, rc)
        if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return }
        let error = classify(e)
        failed = error
        throw error
    }

    private func drain(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        guard let wbio else { return }
        while micro_bio_pending(wbio) > 0 {
            let n = BIO_read(wbio, scratch.baseAddress, Int32(scratch.count))
            if n <= 0 { break }
            emit(UnsafeRawBufferPointer(start: scratch.baseAddress, count: Int(n)))
        }
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
