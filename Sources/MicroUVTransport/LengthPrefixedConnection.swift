public import MicroEventLoop
internal import MicroCore
internal import MicroFraming

/// Receives the frames and the close of ``LengthPrefixedConnection``s. A class rather than a protocol so that a
/// connection holds it in one 8-byte reference (a protocol existential takes 16), and one handler can serve every
/// connection (e.g. the echo): an idle connection then carries nothing of its own for it. Subclass and override.
/// Methods are called on the connection's loop; a handler shared by connections of several loops must be
/// thread-safe (or stateless).
open class LengthPrefixedConnectionHandler {
    public init() {}
    /// A frame arrived. `payload` is valid only during the call (it may sit in the loop's read buffer).
    open func connection(_ connection: LengthPrefixedConnection, didReceive payload: UnsafeRawBufferPointer) {}
    /// The connection closed; `error` is nil for an orderly close. Called once.
    open func connectionDidClose(_ connection: LengthPrefixedConnection, error: UVError?) {}
}

/// Plain length-prefixed mode: each frame is a 4-byte big-endian payload length and the payload, with no
/// preface, no multiplexing and no flow control beyond TCP's. For embedders whose protocol brings its own
/// framing.
///
/// Loop-confined. Frames are handed to the handler straight from the loop's read buffer (valid only during the
/// call); only a partial frame is copied, and large frames are read straight into their own buffer. Frames sent
/// while handling a read burst leave in one write at its end. When the peer stops reading and output passes
/// the high watermark, reading stops until it drains (bounded memory under a client that never reads).
/// A frame above `maxPayload` closes the connection.
///
/// Laid out small (56 bytes, a 64-byte heap block): one lives for every connection, idle ones included.
public final class LengthPrefixedConnection: TCPConnectionDelegate {
    public let connection: TCPConnection
    @exclusivity(unchecked) private var accumulator: FrameAccumulator
    private let handler: LengthPrefixedConnectionHandler

    /// Takes over `connection` (sets itself as delegate) and starts reading; frames and the close go to
    /// `handler`, which may be shared by many connections.
    @discardableResult
    public init(_ connection: TCPConnection, maxPayload: Int = 16 << 20, handler: LengthPrefixedConnectionHandler) {
        self.connection = connection
        accumulator = FrameAccumulator(headerSize: 4, maxPayload: maxPayload)
        self.handler = handler
        connection.delegate = self
        connection.startReading()
    }

    /// Takes over `connection` (sets itself as delegate) and starts reading; frames go to `onFrame`, the close
    /// to `onClose`. Allocates a small handler holding the closures, per connection.
    @discardableResult
    public convenience init(
        _ connection: TCPConnection,
        maxPayload: Int = 16 << 20,
        onFrame: @escaping (LengthPrefixedConnection, UnsafeRawBufferPointer) -> Void,
        onClose: @escaping (LengthPrefixedConnection, UVError?) -> Void = { _, _ in }
    ) {
        self.init(connection, maxPayload: maxPayload, handler: ClosureHandler(onFrame: onFrame, onClose: onClose))
    }

    private final class ClosureHandler: LengthPrefixedConnectionHandler {
        let onFrame: (LengthPrefixedConnection, UnsafeRawBufferPointer) -> Void
        let onClose: (LengthPrefixedConnection, UVError?) -> Void
        init(onFrame: @escaping (LengthPrefixedConnection, UnsafeRawBufferPointer) -> Void,
             onClose: @escaping (LengthPrefixedConnection, UVError?) -> Void) {
            self.onFrame = onFrame
            self.onClose = onClose
        }
        override func connection(_ connection: LengthPrefixedConnection, didReceive payload: UnsafeRawBufferPointer) {
            onFrame(connection, payload)
        }
        override func connectionDidClose(_ connection: LengthPrefixedConnection, error: UVError?) {
            onClose(connection, error)
        }
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

    /// Serves `connection` as a framed echo: every frame goes back unchanged and in order. All echo connections
    /// share one handler.
    @discardableResult
    public static func echo(_ connection: TCPConnection, maxPayload: Int = 16 << 20) -> LengthPrefixedConnection {
        LengthPrefixedConnection(connection, maxPayload: maxPayload, handler: EchoHandler.shared)
    }

    /// Stateless, hence shared by the connections of every loop.
    private final class EchoHandler: LengthPrefixedConnectionHandler, @unchecked Sendable {
        static let shared = EchoHandler()
        override func connection(_ c: LengthPrefixedConnection, didReceive payload: UnsafeRawBufferPointer) {
            // The payload sits right after its prefix: echo the whole frame in one copy.
            c.sendFramed(UnsafeRawBufferPointer(start: payload.baseAddress! - 4, count: payload.count + 4))
        }
    }

    public func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        do {
            try accumulator.feed(bytes) { frame in
                self.handler.connection(self, didReceive: UnsafeRawBufferPointer(rebasing: frame[4...]))
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
            self.handler.connection(self, didReceive: UnsafeRawBufferPointer(rebasing: frame[4...]))
            return true
        }
    }

    public func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        if isWritable { connection.startReading() } else { connection.stopReading() }
    }

    public func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        handler.connectionDidClose(self, error: error)
    }
}
