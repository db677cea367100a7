public import MicroEventLoop
public import MicroTLS

/// TLS as a ``ConnectionTransform``: a ``TLSSession`` between the socket and the protocol (the transform is the
/// session, one object per connection). Loop-confined (`Sendable` only so that a reference can be carried to its
/// loop).
///
/// All plaintext of one flush goes through one `SSL_write` (many frames per TLS record, never a record per
/// frame). A handshake that does not finish within the configuration's timeout closes the connection. The
/// sessions of one loop share one storage-free ``TLSIO``: an idle TLS connection holds no BIO memory.
public final class TLSTransform: TLSSession, ConnectionTransform, @unchecked Sendable {
    /// Closes the connection if the handshake takes too long; nil (or cancelled) once it is done or the
    /// connection closed. Loop-confined.
    private var timer: LoopTimer?

    /// The TLS session: the transform itself.
    public var session: TLSSession { self }

    /// Attaches TLS to `connection` (before any byte was exchanged, on its loop), with the handshake timeout of
    /// `context`.
    @discardableResult
    public static func attach(to connection: TCPConnection, context: TLSContext, serverName: String? = nil) throws -> TLSTransform {
        let io = connection.loop.loopLocal(TLSIO.self) { TLSIO() }
        let t = try TLSTransform(context: context, serverName: serverName, io: io)
        try connection.attachTransform(t)
        if context.configuration.returnsMemoryAfterHandshakeBursts {
            connection.loop.loopLocal(HandshakeBurstTrimmer.self) { HandshakeBurstTrimmer(loop: connection.loop) }.handshakeStarted()
        }
        let timeout = context.configuration.handshakeTimeoutMilliseconds
        if timeout > 0 {
            // Strong captures: the cycle ends when the timer fires or is cancelled (handshake done, connection
            // closed). Weak ones would give both objects a side table for their whole life.
            t.timer = LoopTimer(loop: connection.loop, timeout: timeout) { _ in
                guard !t.isHandshakeComplete, connection.isOpen else { return }
                connection.delegate?.connectionTransformDidFail(
                    connection, error: TLSError(.handshakeTimeout, "no TLS handshake within \(timeout) ms"))
                connection.close(error: nil)
            }
        }
        return t
    }

    private func cancelTimer() {
        if let t = timer {
            timer = nil
            t.cancel()
        }
    }

    public var canSend: Bool { isHandshakeComplete }

    public func inbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer,
                        deliver: (UnsafeRawBufferPointer) -> Void, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try receive(bytes, scratch: scratch, deliver: deliver, emit: emit)
        if timer != nil && isHandshakeComplete { cancelTimer() }
    }

    public func outbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws {
        try send(bytes, scratch: scratch, emit: emit)
    }

    public func finish(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) {
        cancelTimer()
        close(scratch: scratch, emit: emit)
    }

    public func connectionDidClose() { cancelTimer() }
}

/// One per loop: after a burst of TLS handshakes, once none has started for a while, returns the memory they freed
/// to the system (see ``TLSConfiguration/returnsMemoryAfterHandshakeBursts``). Loop-confined.
final class HandshakeBurstTrimmer {
    /// Handshakes since the last trim that make a burst.
    static let burst = 128
    /// Quiet time (no handshake started) before trimming, and half of it between checks.
    static let quietMilliseconds: UInt64 = 1000
    unowned let loop: EventLoop
    /// Handshakes started since the last trim. Loop-confined, like the fields below.
    private var started = 0
    /// Loop time of the latest handshake start.
    private var lastStart: UInt64 = 0
    /// Armed once a burst is under way; cancelled after the trim.
    private var timer: LoopTimer?

    init(loop: EventLoop) { self.loop = loop }

    func handshakeStarted() {
        started += 1
        lastStart = loop.nowMilliseconds
        guard started >= Self.burst, timer == nil else { return }
        timer = LoopTimer(loop: loop, timeout: Self.quietMilliseconds, repeatEvery: Self.quietMilliseconds / 2) { [weak self] _ in
            self?.check()
        }
        timer?.unref()
    }

    private func check() {
        guard loop.nowMilliseconds - lastStart >= Self.quietMilliseconds else { return }
        timer?.cancel()
        timer = nil
        started = 0
        EventLoop.returnFreeMemoryToSystem()
    }
}
