internal import COpenSSL
import Glibc
import Synchronization

/// An OpenSSL `SSL_CTX` built from a ``TLSConfiguration``: certificates, trust, versions, ALPN. Thread-safe and
/// shared by every connection of a server or client; sessions are made from it with ``TLSSession``.
///
/// `SSL_MODE_RELEASE_BUFFERS` is on, so that idle connections give their record buffers back; compression and
/// renegotiation are off. The certificate chain sent is the configured one (`SSL_MODE_NO_AUTO_CHAIN`): put the
/// intermediates after the leaf in the PEM; the trust store is not searched to complete it.
public final class TLSContext: @unchecked Sendable {
    public enum Role: Sendable { case client, server }

    public let role: Role
    public let configuration: TLSConfiguration
    let ctx: OpaquePointer
    /// ALPN protocols in wire format (length-prefixed), kept alive for the server's selection callback.
    private let alpnWire: [UInt8]
    private let alpnBox: UnsafeMutablePointer<UInt8>?
    /// Client: the latest resumable session per server name (`SSL_SESSION*`, owned). Guarded by its mutex.
    private let sessions = Mutex<[String: SessionRef]>([:])

    /// An owned `SSL_SESSION*`; OpenSSL sessions are reference counted and thread-safe.
    struct SessionRef: @unchecked Sendable { let pointer: OpaquePointer }
    /// Most server names whose sessions are kept.
    static let maxCachedSessions = 1024

    public init(role: Role, configuration: TLSConfiguration) throws(TLSError) {
        self.role = role
        self.configuration = configuration
        guard let ctx = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw TLSError(.badConfiguration, "SSL_CTX_new failed: \(TLSContext.drainErrors())")
        }
        self.ctx = ctx
        var wire: [UInt8] = []
        for p in configuration.applicationProtocols where !p.isEmpty && p.utf8.count < 256 {
            wire.append(UInt8(p.utf8.count))
            wire += Array(p.utf8)
        }
        alpnWire = wire
        if wire.isEmpty {
            alpnBox = nil
        } else {
            let box = UnsafeMutablePointer<UInt8>.allocate(capacity: wire.count + 2)
            box[0] = UInt8(wire.count >> 8)
            box[1] = UInt8(wire.count & 0xFF)
            for (i, b) in wire.enumerated() { box[i + 2] = b }
            alpnBox = box
        }
        // On failure deinit runs (every property is set) and frees the context.
        try configure()
    }

    deinit {
        sessions.withLock { for (_, s) in $0 { SSL_SESSION_free(s.pointer) } }
        SSL_CTX_free(ctx)
        alpnBox?.deallocate()
    }

    /// Client: keeps `session` (taking ownership) for the next connection to `key`.
    func store(session: OpaquePointer, for key: String) {
        let new = SessionRef(pointer: session)
        let old: SessionRef? = sessions.withLock { s in
            var evicted: SessionRef?
            if s[key] == nil && s.count >= Self.maxCachedSessions, let victim = s.keys.first {
                evicted = s.removeValue(forKey: victim)
            }
            let old = s.updateValue(new, forKey: key)
            return old ?? evicted
        }
        if let old { SSL_SESSION_free(old.pointer) }
    }

    /// Client: takes the session kept for `key`, if any (sessions are used once, as TLS 1.3 advises).
    func takeSession(for key: String) -> OpaquePointer? {
        sessions.withLock { $0.removeValue(forKey: key) }?.pointer
    }

    private func configure() throws(TLSError) {
        let c = configuration
        _ = micro_ssl_ctx_set_min_proto(ctx, c.minimumVersion == .tls13 ? micro_tls1_3_version() : micro_tls1_2_version())
        SSL_CTX_set_options(ctx, micro_default_options())
        // No automatic chain: each handshake would otherwise complete our certificate's chain from the trust store,
        // and with the system store (OpenSSL 3's directory loader) that lists /etc/ssl/certs on every handshake,
        // a third of a full handshake's server CPU. We send the chain as configured (the leaf and the certificates
        // after it in the PEM), as nginx and HAProxy do.
        _ = micro_ssl_ctx_set_mode(ctx, micro_mode_release_buffers() | micro_mode_no_auto_chain())
        // TLS 1.2 only with forward secrecy and AEAD: ECDHE key exchange, AES-GCM or ChaCha20-Poly1305 (no RSA key
        // exchange, no CBC, no CAMELLIA/ARIA, no SHA-1). TLS 1.3's suites are all AEAD and stay as OpenSSL has them.
        _ = SSL_CTX_set_cipher_list(ctx, TLSConfiguration.tls12Ciphers)

        if let chain = c.certificateChain {
            try loadChain(chain)
            guard let key = c.privateKey else { throw TLSError(.badConfiguration, "a certificate chain needs its private key") }
            try loadKey(key)
            if SSL_CTX_check_private_key(ctx) != 1 {
                throw TLSError(.badConfiguration, "the private key does not match the certificate: \(TLSContext.drainErrors())")
            }
        } else if role == .server {
            throw TLSError(.badConfiguration, "a TLS server needs a certificate chain and a private key")
        }

        switch c.trustRoots {
        case .system:
            SSL_CTX_set_default_verify_paths(ctx)
        case .file(let path):
            if SSL_CTX_load_verify_locations(ctx, path, nil) != 1 {
                throw TLSError(.badConfiguration, "cannot load trusted CAs from \(path): \(TLSContext.drainErrors())")
            }
        case .directory(let path):
            if SSL_CTX_load_verify_locations(ctx, nil, path) != 1 {
                throw TLSError(.badConfiguration, "cannot use the CA directory \(path): \(TLSContext.drainErrors())")
            }
        case .pem(let bytes):
            let certs = try Self.readCertificates(bytes, what: "trusted CAs")
            let store = SSL_CTX_get_cert_store(ctx)
            for x in certs {
                X509_STORE_add_cert(store, x)
                X509_free(x)
            }
        }

        switch role {
        case .client:
            SSL_CTX_set_verify(ctx, c.verification == .none ? micro_verify_none() : micro_verify_peer(), nil)
            if c.verification == .none {
                let warning = "swift-micro: WARNING: TLS certificate verification is OFF for this client: anyone can impersonate the server\n"
                _ = warning.withCString { write(2, $0, strlen($0)) }
            }
            // Resumption: sessions (TLS 1.3 tickets) are kept per server name, outside OpenSSL's internal store.
            _ = micro_ssl_ctx_set_session_cache_mode(ctx, micro_sess_cache_client_no_internal())
            SSL_CTX_sess_set_new_cb(ctx) { ssl, session in
                guard let ssl, let session, let data = micro_ssl_get_app_data(ssl) else { return 0 }
                let owner = Unmanaged<TLSSession>.fromOpaque(data).takeUnretainedValue()
                owner.context.store(session: session, for: owner.cacheKey)
                return 1  // we own the session now
            }
            if let alpnBox, SSL_CTX_set_alpn_protos(ctx, alpnBox + 2, UInt32(alpnWire.count)) != 0 {
                throw TLSError(.badConfiguration, "cannot set ALPN: \(TLSContext.drainErrors())")
            }
        case .server:
            // Resumption is by stateless tickets (TLS 1.3 and 1.2); a server-side cache would only keep a copy of
            // every TLS 1.2 session (~1 KB each, for five minutes) for the rare client without tickets.
            _ = micro_ssl_ctx_set_session_cache_mode(ctx, micro_sess_cache_off())
            if c.requireClientCertificate {
                SSL_CTX_set_verify(ctx, micro_verify_peer() | micro_verify_fail_if_no_peer_cert(), nil)
            } else {
                SSL_CTX_set_verify(ctx, micro_verify_none(), nil)
            }
            if let alpnBox {
                SSL_CTX_set_alpn_select_cb(ctx, { _, out, outlen, input, inlen, arg in
                    let box = arg!.assumingMemoryBound(to: UInt8.self)
                    let count = UInt32(box[0]) << 8 | UInt32(box[1])
                    var selected: UnsafeMutablePointer<UInt8>?
                    let rc = SSL_select_next_proto(&selected, outlen, box + 2, count, input, inlen)
                    if rc == OPENSSL_NPN_NEGOTIATED, let selected {
                        out!.pointee = UnsafePointer(selected)
                        return SSL_TLSEXT_ERR_OK
                    }
                    // No common protocol: go on without ALPN (peers such as plain s_client offer none).
                    return SSL_TLSEXT_ERR_NOACK
                }, alpnBox)
            }
        }
    }

    private func loadChain(_ source: TLSConfiguration.PEMSource) throws(TLSError) {
        switch source {
        case .file(let path):
            if SSL_CTX_use_certificate_chain_file(ctx, path) != 1 {
                throw TLSError(.badConfiguration, "cannot load the certificate chain from \(path): \(TLSContext.drainErrors())")
            }
        case .bytes(let bytes):
            let certs = try Self.readCertificates(bytes, what: "certificate chain")
            defer { for x in certs { X509_free(x) } }
            if SSL_CTX_use_certificate(ctx, certs[0]) != 1 {
                throw TLSError(.badConfiguration, "cannot use the certificate: \(TLSContext.drainErrors())")
            }
            for x in certs.dropFirst() where micro_ssl_ctx_add1_chain_cert(ctx, x) != 1 {
                throw TLSError(.badConfiguration, "cannot add a chain certificate: \(TLSContext.drainErrors())")
            }
        }
    }

    private func loadKey(_ source: TLSConfiguration.PEMSource) throws(TLSError) {
        switch source {
        case .file(let path):
            if SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1 {
                throw TLSError(.badConfiguration, "cannot load the private key from \(path): \(TLSContext.drainErrors())")
            }
        case .bytes(let bytes):
            let key: OpaquePointer? = bytes.withUnsafeBytes { b in
                let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count))
                defer { BIO_free(bio) }
                return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
            }
            guard let key else { throw TLSError(.badConfiguration, "the private key is not valid PEM: \(TLSContext.drainErrors())") }
            defer { EVP_PKEY_free(key) }
            if SSL_CTX_use_PrivateKey(ctx, key) != 1 {
                throw TLSError(.badConfiguration, "cannot use the private key: \(TLSContext.drainErrors())")
            }
        }
    }

    static func readCertificates(_ bytes: [UInt8], what: String) throws(TLSError) -> [OpaquePointer] {
        var certs: [OpaquePointer] = []
        bytes.withUnsafeBytes { b in
            let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count))
            defer { BIO_free(bio) }
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) { certs.append(x) }
        }
        ERR_clear_error()  // the loop ends on a "no start line" error
        if certs.isEmpty { throw TLSError(.badConfiguration, "no PEM certificate found in the \(what)") }
        return certs
    }

    /// Takes OpenSSL's error queue (per thread) as text.
    static func drainErrors() -> String {
        var parts: [String] = []
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "no OpenSSL error" : parts.joined(separator: "; ")
    }
}
