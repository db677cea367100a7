public import MicroEventLoop
public import MicroTLS

/// TLS as a ``ConnectionTransform``: a ``TLSSession`` between the socket and the protocol. Loop-confined (`Sendable`
/// only so that a reference can be carried to its loop).
///
/// All plaintext of one flush goes through one `SSL_write` (many frames per TLS record, never a record per
/// frame). A handshake that does not finish within the configuration's timeout closes the connection.
public final class TLSTransform: ConnectionTransform, @unchecked Sendable {
    public let session: TLSSession
    private var timer: LoopTimer?

    public init(session: TLSSession) { self.session = session }

    /// Attaches TLS to `connection` (before any byte was exchanged), with the handshake timeout of `context`.
    @discardableResult
    public static func attach(to connection: TCPConnection, context: TLSContext, serverName: String? = nil) throws -> TLSTransform {
        let t = TLSTransform(session: try TLSSession(context: context, serverName: serverName))
        try connection.attachTransform(t)
        let timeout = context.configuration.handshakeTimeoutMilliseconds
        if timeout > 0 {
            t.timer = LoopTimer(loop: connection.loop, timeout: timeout) { [weak t, weak connection] _ in
                guard let t, let connection, !t.session.isHandshakeComplete else { return }
                connection.delegate?.connectionTransformDidFail(
                    connection, error: TLSError(.handshakeTimeout, "no TLS handshake within \(timeout) ms"))
                connection.close(error: nil)
            }
        }
        return t
    }

    public var canSend: Bool { session.isHandshakeComplete }

    public func start(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try session.start(scratch: scratch, emit: emit)
    }

    public func inbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer,
                        deliver: (UnsafeRawBufferPointer) -> Void, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try session.receive(bytes, scratch: scratch, deliver: deliver, emit: emit)
        if session.isHandshakeComplete, let t = timer {
            timer = nil
            t.cancel()
        }
    }

    public func outbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try session.send(bytes, scratch: scratch, emit: emit)
    }

    public func finish(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        timer?.cancel()
        timer = nil
        session.close(scratch: scratch, emit: emit)
    }
}
