// The check behind FuzzTLSRecords: a server TLSSession (in memory, through a TLSIO shared by its sessions, as on an
// event loop) fed whatever a client sent never crashes, answers garbage with a TLSError of a kind a peer can cause
// and then keeps failing with it, delivers no plaintext before its handshake completed, writes only whole TLS records
// of bounded size, and comes to the same outcome whether the bytes arrive at once or in small pieces.
import MicroTLS

/// The server contexts, made once from Identity.swift: TLS 1.2 and 1.3 with ALPN `micro/1` (the default), TLS 1.3
/// only, mTLS (a client certificate from the CA required), and no ALPN.
let contexts: [TLSContext] = [
    server { _ in },
    server { $0.minimumVersion = .tls13 },
    server {
        $0.requireClientCertificate = true
        $0.trustRoots = .pem(Array(caPEM.utf8))
    },
    server { $0.applicationProtocols = [] },
]

func server(_ edit: (inout TLSConfiguration) -> Void) -> TLSContext {
    var c = TLSConfiguration()
    c.certificateChain = .bytes(Array(serverCertificatePEM.utf8))
    c.privateKey = .bytes(Array(serverKeyPEM.utf8))
    c.verification = .noHostnameVerification
    edit(&c)
    do {
        return try TLSContext(role: .server, configuration: c)
    } catch {
        fatalError("cannot make the server context: \(error)")
    }
}

/// What a client's bytes led to.
struct Outcome: Equatable {
    var error: TLSError.Kind?
    var handshakeComplete = false
    var receivedCloseNotify = false
    var plaintext: [UInt8] = []
}

/// The kinds of failure a client can cause a server (not a configuration, a timeout or a host name).
let peerCausedKinds: [TLSError.Kind] = [
    .notTLS, .protocolMismatch, .unexpectedEOF, .handshakeFailed, .missingClientCertificate, .untrustedCertificate, .expiredCertificate,
]

/// The input's first byte: bits 0-1 pick the server context (``contexts``), bit 2 a small scratch buffer (the
/// session's output then fills it and goes out in many pieces), bits 3-7 the size of the pieces the bytes arrive in
/// (1-32); the rest is what the client sent. The bytes go to one session at once and to another in pieces.
func checkServer(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let context = contexts[Int(control & 3)]
    let scratchSize = control & 4 != 0 ? 600 : 64 << 10
    let step = Int(control >> 3) + 1
    let input = UnsafeRawBufferPointer(rebasing: data[1...])
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchSize, alignment: 16)
    defer { scratch.deallocate() }
    let io = TLSIO()
    let whole = serve(input, context: context, io: io, step: max(input.count, 1), scratch: scratch)
    let pieces = serve(input, context: context, io: io, step: step, scratch: scratch)
    precondition(whole == pieces, "the pieces changed the outcome: \(whole) at once, \(pieces) in pieces of \(step)")
}

/// Feeds `input` to a new server session in pieces of `step` bytes, and checks what it says back.
func serve(_ input: UnsafeRawBufferPointer, context: TLSContext, io: TLSIO, step: Int,
           scratch: UnsafeMutableRawBufferPointer) -> Outcome {
    let session: TLSSession
    do {
        session = try TLSSession(context: context, io: io)
    } catch {
        fatalError("cannot make a session: \(error)")
    }
    precondition(session.uses(io))
    var out = Outcome()
    var written: [UInt8] = []
    var offset = 0
    while offset < input.count {
        let piece = UnsafeRawBufferPointer(rebasing: input[offset..<min(input.count, offset + step)])
        offset += piece.count
        do throws(TLSError) {
            try session.receive(piece, scratch: scratch, deliver: { out.plaintext += $0 }, emit: { written += $0 })
        } catch {
            precondition(peerCausedKinds.contains(error.kind), "a client caused \(error)")
            out.error = error.kind
            // Failed for good: the same error for anything more, and nothing more said.
            let said = written.count
            do throws(TLSError) {
                try session.receive(piece, scratch: scratch, deliver: { _ in fatalError("plaintext after a failure") }, emit: { written += $0 })
                fatalError("a failed session took more bytes")
            } catch let again {
                precondition(again == error, "failed with \(error), then with \(again)")
            }
            precondition(written.count == said, "a failed session wrote more")
            break
        }
    }
    if out.error == nil { session.close(scratch: scratch) { written += $0 } }
    out.handshakeComplete = session.isHandshakeComplete
    out.receivedCloseNotify = session.receivedCloseNotify
    precondition(out.plaintext.isEmpty || out.handshakeComplete, "plaintext before the handshake completed")
    checkRecords(written)
    return out
}

/// What the server wrote is a sequence of whole TLS records: a known content type, version 3.x (but an alert goes
/// out in whatever version the client claimed, when that is what is wrong), and no more than the largest ciphertext
/// TLS allows (2^14 + 2048).
func checkRecords(_ bytes: [UInt8]) {
    var i = 0
    while i < bytes.count {
        precondition(bytes.count - i >= 5, "the server wrote a partial record header")
        let type = bytes[i]
        let length = Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
        precondition((20...23).contains(type), "the server wrote a record of type \(type)")
        precondition(bytes[i + 1] == 3 || type == 21, "the server wrote a record of version \(bytes[i + 1]).\(bytes[i + 2])")
        precondition(length <= (1 << 14) + 2048, "the server wrote a record of \(length) bytes")
        precondition(bytes.count - i - 5 >= length, "the server wrote a partial record")
        i += 5 + length
    }
}
