public import MicroEventLoop
internal import MicroFraming

/// Plain length-prefixed mode: each frame is a 4-byte big-endian payload length and the payload, with no
/// preface, no multiplexing and no flow control beyond TCP's. For embedders whose protocol brings its own
/// framing.
///
/// Loop-confined. Frames are handed to `onFrame` straight from the loop's read buffer (valid only during the
/// call); only a partial frame is copied, and large frames are read straight into their own buffer. Frames sent
/// while handling a read burst leave in one write at its end. When the peer stops reading and output passes
/// the high watermark, reading stops until it drains (bounded memory under a client that never reads).
/// A frame above `maxPayload` closes the connection.
public final class LengthPrefixedConnection: TCPConnectionDelegate {
    public let connection: TCPConnection
    private var accumulator: FrameAccumulator
    private let onFrame: (LengthPrefixedConnection, UnsafeRawBufferPointer) -> Void
    private let onClose: (LengthPrefixedConnection, UVError?) -> Void

    /// Takes over `connection` (sets itself as delegate) and starts reading.
    @discardableResult
    public init(
        _ connection: TCPConnection,
        maxPayload: Int = 16 << 20,
        onFrame: @escaping (LengthPrefixedConnection, UnsafeRawBufferPointer) -> Void,
        onClose: @escaping (LengthPrefixedConnection, UVError?) -> Void = { _, _ in }
    ) {
        self.connection = connection
        accumulator = FrameAccumulator(headerSize: 4, maxPayload: maxPayload)
        self.onFrame = onFrame
        self.onClose = onClose
        connection.delegate = self
        connection.startReading()
    }

    /// Sends one frame: the length prefix and `payload`, batched with the other output of this loop turn.
    public func send(_ payload: UnsafeRawBufferPointer) {
        connection.withOutbound(reserving: 4 + payload.count) { p in
            p.storeBytes(of: UInt32(payload.count).bigEndian, as: UInt32.self)
            if payload.count > 0 { (p + 4).copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
            return 4 + payload.count
        }
    }

    /// Sends bytes that already hold whole frames, prefixes included (e.g. an echo of received frames). Large
    /// ones go to the socket straight from where they are when nothing else waits to go out.
    public func sendFramed(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count >= 16 << 10 { connection.writeImmediately(bytes) } else { connection.write(bytes) }
    }

    /// Serves `connection` as a framed echo: every frame goes back unchanged and in order.
    @discardableResult
    public static func echo(_ connection: TCPConnection, maxPayload: Int = 16 << 20) -> LengthPrefixedConnection {
        LengthPrefixedConnection(connection, maxPayload: maxPayload) { c, payload in
            // The payload sits right after its prefix: echo the whole frame in one copy.
            c.sendFramed(UnsafeRawBufferPointer(start: payload.baseAddress! - 4, count: payload.count + 4))
        }
    }

    public func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        do {
            try accumulator.feed(bytes) { frame in
                self.onFrame(self, UnsafeRawBufferPointer(rebasing: frame[4...]))
                return connection.isOpen
            }
        } catch {
            connection.close(error: nil)
        }
    }

    public func connectionReadBuffer(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer? {
        accumulator.directReadBuffer()
    }

    public func connectionDidReadDirect(_ connection: TCPConnection, count: Int) {
        accumulator.commitDirectRead(count) { frame in
            self.onFrame(self, UnsafeRawBufferPointer(rebasing: frame[4...]))
            return true
        }
    }

    public func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        if isWritable { connection.startReading() } else { connection.stopReading() }
    }

    public func connectionDidClose(_ connection: TCPConnection, error: UVError?) { onClose(self, error) }
}
