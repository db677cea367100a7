public import MicroEventLoop
internal import MicroFraming

/// Plain length-prefixed mode (4-byte big-endian length + payload, no multiplexing): echoes every complete
/// frame back unchanged and in order. The reference workload of the transport benchmarks, and a template for
/// embedders whose protocol brings its own framing.
///
/// Loop-confined. Frames of one read burst leave in one write; a partial frame is kept only while incomplete,
/// and large frames are read straight into their own buffer.
public final class LengthPrefixedEchoHandler: TCPConnectionDelegate {
    private var accumulator: FrameAccumulator
    private var paused = false

    public init(maxPayload: Int = 16 << 20) {
        accumulator = FrameAccumulator(headerSize: 4, maxPayload: maxPayload)
    }

    /// Serves `connection` with a new echo handler and starts reading.
    public static func serve(_ connection: TCPConnection, maxPayload: Int = 16 << 20) {
        connection.delegate = LengthPrefixedEchoHandler(maxPayload: maxPayload)
        connection.startReading()
    }

    public func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        do {
            try accumulator.feed(bytes) { frame in
                connection.write(frame)
                return true
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
            connection.write(frame)
            return true
        }
    }

    public func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        // Backpressure: a peer that does not read its echoes stops being read.
        if isWritable { connection.startReading() } else { connection.stopReading() }
    }

    public func connectionDidClose(_ connection: TCPConnection, error: UVError?) {}
}
