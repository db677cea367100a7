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
    unowned let loop: EventLoop
    /// Loop time of the last byte in either direction.
    var lastActivity: UInt64 = 0
    /// Whether the loop's idle sweeper is watching this transform.
    var watched = false

    public init(session: TLSSession, loop: EventLoop) {
        self.session = session
        self.loop = loop
    }

    /// Notes activity; an idle connection's TLS buffers are freed by the loop's sweeper a while later.
    private func touch() {
        lastActivity = loop.nowMilliseconds
        if !watched {
            watched = true
            loop.loopLocal(TLSIdleSweeper.self) { TLSIdleSweeper(loop: loop) }.watch(self)
        }
    }

    /// Attaches TLS to `connection` (before any byte was exchanged), with the handshake timeout of `context`.
    @discardableResult
    public static func attach(to connection: TCPConnection, context: TLSContext, serverName: String? = nil) throws -> TLSTransform {
        let t = TLSTransform(session: try TLSSession(context: context, serverName: serverName), loop: connection.loop)
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
        touch()
        if session.isHandshakeComplete, let t = timer {
            timer = nil
            t.cancel()
        }
    }

    public func outbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try session.send(bytes, scratch: scratch, emit: emit)
        touch()
    }

    public func finish(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        timer?.cancel()
        timer = nil
        session.close(scratch: scratch, emit: emit)
    }
}

/// One per loop: every 250 ms, frees the TLS buffers of connections idle for at least 250 ms, so an idle TLS
/// connection holds only OpenSSL's own state. Loop-confined.
final class TLSIdleSweeper {
    static let idleMilliseconds: UInt64 = 250
    unowned let loop: EventLoop
    private var watched: [Weak] = []
    private var timer: LoopTimer?

    struct Weak { weak var transform: TLSTransform? }

    init(loop: EventLoop) { self.loop = loop }

    func watch(_ t: TLSTransform) {
        watched.append(Weak(transform: t))
        if timer == nil {
            timer = LoopTimer(loop: loop, timeout: Self.idleMilliseconds, repeatEvery: Self.idleMilliseconds) { [weak self] _ in self?.sweep() }
            timer?.unref()
        }
    }

    private func sweep() {
        let now = loop.nowMilliseconds
        watched.removeAll { entry in
            guard let t = entry.transform else { return true }
            guard now - t.lastActivity >= Self.idleMilliseconds else { return false }
            if t.session.releaseBuffersIfIdle() || !t.session.holdsBuffers {
                t.watched = false
                return true
            }
            return false
        }
        if watched.isEmpty {
            timer?.cancel()
            timer = nil
        }
    }
}
