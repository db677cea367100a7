import Foundation
import MicroTestSupport
import MicroTLS
import Testing

/// Two sessions connected in memory: every byte one emits is fed to the other.
final class Pair {
    let client: TLSSession
    let server: TLSSession
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    var clientError: TLSError?
    var serverError: TLSError?
    let scratch: UnsafeMutableRawBufferPointer
    /// Ciphertext is fed in pieces of at most this many bytes.
    let feed: Int
    private var toServer: [UInt8] = []
    private var toClient: [UInt8] = []

    init(client: TLSContext, server: TLSContext, serverName: String? = "localhost", io: TLSIO? = nil,
         scratchSize: Int = 64 << 10, feed: Int = .max) throws {
        self.client = try TLSSession(context: client, serverName: serverName, io: io)
        self.server = try TLSSession(context: server, io: io)
        scratch = .allocate(byteCount: scratchSize, alignment: 16)
        self.feed = feed
    }

    /// Feeds `bytes` to `session` in pieces of at most `feed` bytes.
    private func feed(_ bytes: [UInt8], to session: TLSSession, deliver: (UnsafeRawBufferPointer) -> Void,
                      emit: (UnsafeRawBufferPointer) -> Void) throws {
        var offset = 0
        while offset < bytes.count {
            let n = min(feed, bytes.count - offset)
            try bytes[offset..<offset + n].withUnsafeBytes { b in
                try session.receive(b, scratch: scratch, deliver: deliver, emit: emit)
            }
            offset += n
        }
    }

    deinit { scratch.deallocate() }

    /// Runs the handshake (and any pending bytes) until neither side has anything more to say.
    func pump(clientStart: Bool = true) {
        if clientStart { try? client.start(scratch: scratch) { toServer += $0 } }
        for _ in 0..<200 {
            if toServer.isEmpty && toClient.isEmpty { break }
            let s = toServer
            toServer = []
            if !s.isEmpty && serverError == nil {
                do {
                    try feed(s, to: server, deliver: { serverReceived += $0 }, emit: { toClient += $0 })
                } catch { serverError = error as? TLSError }
            }
            let c = toClient
            toClient = []
            if !c.isEmpty && clientError == nil {
                do {
                    try feed(c, to: client, deliver: { clientReceived += $0 }, emit: { toServer += $0 })
                } catch { clientError = error as? TLSError }
            }
        }
    }

    func clientSends(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in try client.send(b, scratch: scratch) { toServer += $0 } }
        pump(clientStart: false)
    }

    func serverSends(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { b in try server.send(b, scratch: scratch) { toClient += $0 } }
        pump(clientStart: false)
    }

    func serverReceivesRaw(_ bytes: [UInt8]) {
        do {
            try bytes.withUnsafeBytes { b in
                try server.receive(b, scratch: scratch, deliver: { serverReceived += $0 }, emit: { _ in })
            }
        } catch { serverError = error as? TLSError }
    }
}

@Suite("TLS sessions", .serialized)
struct TLSSessionTests {
    let certs: Certificates

    init() throws { certs = try Certificates.make() }

    func serverContext(cert: String? = nil, requireClientCert: Bool = false, minimum: TLSConfiguration.Version = .tls12) throws -> TLSContext {
        var c = TLSConfiguration.server(certificateFile: cert ?? certs.serverCert, keyFile: certs.serverKey)
        c.requireClientCertificate = requireClientCert
        c.trustRoots = .file(certs.ca)
        c.minimumVersion = minimum
        return try TLSContext(role: .server, configuration: c)
    }

    func clientContext(trust: String? = nil, withCert: Bool = false, verification: TLSConfiguration.Verification = .fullVerification) throws -> TLSContext {
        var c = TLSConfiguration.client(trusting: trust ?? certs.ca)
        c.verification = verification
        if withCert {
            c.certificateChain = .file(certs.clientCert)
            c.privateKey = .file(certs.clientKey)
        }
        return try TLSContext(role: .client, configuration: c)
    }

    @Test func handshakeAndDataBothWays() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(), server: try serverContext())
        p.pump()
        #expect(p.clientError == nil && p.serverError == nil)
        #expect(p.client.isHandshakeComplete && p.server.isHandshakeComplete)
        #expect(p.client.version == "TLSv1.3")
        #expect(p.client.negotiatedProtocol == "micro/1")
        try p.clientSends(Array("ping".utf8))
        #expect(p.serverReceived == Array("ping".utf8))
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0) }
        try p.serverSends(big)
        #expect(p.clientReceived.count == big.count)
        #expect(p.clientReceived == big)
    }

    @Test func sharedBIOWithTinyScratchAndOneByteReads() throws {
        defer { certs.remove() }
        // Client and server share one storage-free BIO (as the sessions of one loop do); 64 bytes of scratch
        // (32 for output) force many partial writes and retried SSL calls; ciphertext arrives a byte at a time.
        let io = TLSIO()
        let p = try Pair(client: try clientContext(), server: try serverContext(), io: io, scratchSize: 64, feed: 1)
        p.pump()
        #expect(p.clientError == nil && p.serverError == nil)
        #expect(p.client.isHandshakeComplete && p.server.isHandshakeComplete)
        #expect(p.client.uses(io) && p.server.uses(io))
        let big = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try p.clientSends(big)
        #expect(p.serverReceived == big)
        try p.serverSends(Array(big.reversed()))
        #expect(p.clientReceived == Array(big.reversed()))
        #expect(p.clientError == nil && p.serverError == nil)
    }

    @Test func nestedCallsOnASharedBIO() throws {
        defer { certs.remove() }
        // The server answers from inside `deliver`, i.e. an SSL_write on the shared BIO while SSL_read's input is
        // half consumed: the nested call must not disturb the outer one.
        let io = TLSIO()
        let p = try Pair(client: try clientContext(), server: try serverContext(), io: io)
        p.pump()
        let other = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { other.deallocate() }
        var toServer: [UInt8] = []
        for word in ["one", "two", "three"] {  // three records in one read
            try Array(word.utf8).withUnsafeBytes { b in try p.client.send(b, scratch: p.scratch) { toServer += $0 } }
        }
        var toClient: [UInt8] = []
        var seen: [UInt8] = []
        try toServer.withUnsafeBytes { b in
            try p.server.receive(b, scratch: p.scratch, deliver: { plain in
                seen += plain
                try? p.server.send(plain, scratch: other) { toClient += $0 }
            }, emit: { toClient += $0 })
        }
        #expect(seen == Array("onetwothree".utf8))
        var echoed: [UInt8] = []
        try toClient.withUnsafeBytes { b in
            try p.client.receive(b, scratch: p.scratch, deliver: { echoed += $0 }, emit: { _ in })
        }
        #expect(echoed == Array("onetwothree".utf8))
    }

    @Test func pemBytesWorkLikeFiles() throws {
        defer { certs.remove() }
        var s = TLSConfiguration()
        s.certificateChain = .bytes(Array(try Data(contentsOf: URL(fileURLWithPath: certs.serverCert))))
        s.privateKey = .bytes(Array(try Data(contentsOf: URL(fileURLWithPath: certs.serverKey))))
        var c = TLSConfiguration()
        c.trustRoots = .pem(Array(try Data(contentsOf: URL(fileURLWithPath: certs.ca))))
        let p = try Pair(client: try TLSContext(role: .client, configuration: c), server: try TLSContext(role: .server, configuration: s))
        p.pump()
        #expect(p.client.isHandshakeComplete && p.clientError == nil)
    }

    @Test func untrustedCertificateIsRefused() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(trust: certs.otherCA), server: try serverContext())
        p.pump()
        #expect(p.clientError?.kind == .untrustedCertificate)
        #expect(!p.client.isHandshakeComplete)
    }

    @Test func expiredCertificateIsRefused() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(), server: try serverContext(cert: certs.expiredCert))
        p.pump()
        #expect(p.clientError?.kind == .expiredCertificate)
    }

    @Test func wrongHostIsRefused() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(), server: try serverContext(cert: certs.otherHostCert))
        p.pump()
        #expect(p.clientError?.kind == .hostnameMismatch)
        // The same certificate is accepted when host-name checking is explicitly off.
        let q = try Pair(client: try clientContext(verification: .noHostnameVerification), server: try serverContext(cert: certs.otherHostCert))
        q.pump()
        #expect(q.clientError == nil && q.client.isHandshakeComplete)
    }

    @Test func ipAddressesAreVerifiedAgainstTheCertificate() throws {
        defer { certs.remove() }
        let ok = try Pair(client: try clientContext(), server: try serverContext(), serverName: "127.0.0.1")
        ok.pump()
        #expect(ok.clientError == nil && ok.client.isHandshakeComplete)
        let bad = try Pair(client: try clientContext(), server: try serverContext(), serverName: "127.0.0.2")
        bad.pump()
        #expect(bad.clientError?.kind == .hostnameMismatch)
    }

    @Test func mutualTLS() throws {
        defer { certs.remove() }
        // Without a client certificate the server refuses.
        let p = try Pair(client: try clientContext(), server: try serverContext(requireClientCert: true))
        p.pump()
        try? p.clientSends([1])
        #expect(p.serverError?.kind == .missingClientCertificate)
        // With one, both sides are satisfied and the server sees who the client is.
        let q = try Pair(client: try clientContext(withCert: true), server: try serverContext(requireClientCert: true))
        q.pump()
        try q.clientSends([1, 2])
        #expect(q.serverError == nil && q.serverReceived == [1, 2])
        #expect(q.server.peerSubject?.contains("micro client") == true)
    }

    @Test func garbageInsteadOfClientHello() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(), server: try serverContext())
        p.serverReceivesRaw(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(p.serverError?.kind == .notTLS)
    }

    func configurationError(_ role: TLSContext.Role, _ c: TLSConfiguration) -> TLSError? {
        do {
            _ = try TLSContext(role: role, configuration: c)
            return nil
        } catch {
            return error
        }
    }

    @Test func badConfigurationIsReported() throws {
        defer { certs.remove() }
        let missing = configurationError(.server, .server(certificateFile: certs.dir + "/missing.pem", keyFile: certs.serverKey))
        #expect(missing?.kind == .badConfiguration)
        let mismatched = configurationError(.server, .server(certificateFile: certs.serverCert, keyFile: certs.clientKey))
        #expect(mismatched?.kind == .badConfiguration)
        #expect(mismatched?.message.contains("key") == true)
        let noCertificate = configurationError(.server, TLSConfiguration())
        #expect(noCertificate?.kind == .badConfiguration)
    }

    @Test func secondConnectionResumes() throws {
        defer { certs.remove() }
        let client = try clientContext()
        let server = try serverContext()
        let first = try Pair(client: client, server: server)
        first.pump()
        try first.serverSends([1])  // the client reads the tickets with it
        #expect(first.client.isHandshakeComplete && !first.client.isResumed)
        let second = try Pair(client: client, server: server)
        second.pump()
        #expect(second.clientError == nil)
        #expect(second.client.isResumed, "the second handshake resumes with the first one's ticket")
    }

    @Test func closeNotifyReachesThePeer() throws {
        defer { certs.remove() }
        let p = try Pair(client: try clientContext(), server: try serverContext())
        p.pump()
        var out: [UInt8] = []
        p.client.close(scratch: p.scratch) { out += $0 }
        #expect(!out.isEmpty)
        p.serverReceivesRaw(out)
        #expect(p.server.receivedCloseNotify)
        #expect(p.serverError == nil)
    }
}
