import MicroEventLoop
import Synchronization
import Testing

/// A listener whose accepted connections are echo-served; keeps every server-side connection and its stats.
final class EchoServer: Sendable {
    let listener: TCPListener
    let accepted: Locked<[(connection: TCPConnection, stats: Locked<EchoStats>)]>

    private init(listener: TCPListener, accepted: Locked<[(connection: TCPConnection, stats: Locked<EchoStats>)]>) {
        self.listener = listener
        self.accepted = accepted
    }

    /// Binds port 0 on loopback on `loops`. `configure` runs on the loop for each new connection first
    /// (e.g. to set watermarks).
    static func start(on loops: [EventLoop], configure: @escaping @Sendable (TCPConnection) -> Void = { _ in }) async throws -> EchoServer {
        let accepted = Locked<[(connection: TCPConnection, stats: Locked<EchoStats>)]>([])
        let listener = try await TCPListener.bind(loops: loops, address: loopback) { connection in
            configure(connection)
            let stats = Locked(EchoStats())
            accepted.withLock { $0.append((connection, stats)) }
            EchoHandler.serve(connection, stats: stats)
        }
        return EchoServer(listener: listener, accepted: accepted)
    }

    var address: SocketAddress { listener.localAddress }
    var count: Int { accepted.value.count }
    func stats(_ i: Int) -> EchoStats { accepted.value[i].stats.value }
    func connection(_ i: Int) -> TCPConnection { accepted.value[i].connection }
}

/// A server-side delegate that never reads (the connection is accepted, reading is not started) until told to;
/// then it counts the bytes.
final class Sink: TCPConnectionDelegate {
    let received: Locked<Int>
    let closed: Locked<(count: Int, error: UVError?)>
    init(received: Locked<Int>, closed: Locked<(count: Int, error: UVError?)>) {
        self.received = received
        self.closed = closed
    }
    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        received.withLock { $0 += bytes.count }
    }
    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        closed.withLock { $0 = ($0.count + 1, error) }
    }
}

/// A listener whose connections get a ``Sink`` and are not read until `startReading` is called on them.
final class SinkServer: Sendable {
    let listener: TCPListener
    let connections: Locked<[TCPConnection]>
    let received: Locked<Int>
    let closed: Locked<(count: Int, error: UVError?)>

    private init(listener: TCPListener, connections: Locked<[TCPConnection]>, received: Locked<Int>,
                 closed: Locked<(count: Int, error: UVError?)>) {
        self.listener = listener
        self.connections = connections
        self.received = received
        self.closed = closed
    }

    static func start(on loops: [EventLoop]) async throws -> SinkServer {
        let connections = Locked<[TCPConnection]>([])
        let received = Locked(0)
        let closed = Locked<(count: Int, error: UVError?)>((0, nil))
        let listener = try await TCPListener.bind(loops: loops, address: loopback) { connection in
            connection.delegate = Sink(received: received, closed: closed)
            connections.withLock { $0.append(connection) }
        }
        return SinkServer(listener: listener, connections: connections, received: received, closed: closed)
    }

    /// Starts reading every accepted connection.
    func startReading() async throws {
        for c in connections.value { try await c.loop.submit { c.startReading() } }
    }
}

/// Writes `total` bytes of frames as fast as the connection stays writable, resuming when it becomes
/// writable again. Never reads.
final class Pump: TCPConnectionDelegate {
    struct Progress: Sendable {
        var sent = 0
        var isWritable = true
        var becameUnwritable = 0
        var becameWritable = 0
        var lastProgress = ContinuousClock.now
        var closed = 0
        var closeError: UVError?
    }
    let frame: [UInt8]
    let total: Int
    var sent = 0
    let progress: Locked<Progress>

    init(framePayload: Int, total: Int, progress: Locked<Progress>) {
        frame = lengthPrefixedFrame(pattern(framePayload, seed: 1))
        self.total = total
        self.progress = progress
    }

    func pump(_ c: TCPConnection) {
        let before = sent
        while c.isOpen && c.isWritable && sent < total {
            c.write(contentsOf: frame)
            sent += frame.count
        }
        let now = ContinuousClock.now, sent = self.sent, writable = c.isWritable
        progress.withLock {
            $0.sent = sent
            $0.isWritable = writable
            if sent > before { $0.lastProgress = now }
        }
    }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {}

    func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        let now = ContinuousClock.now
        progress.withLock {
            $0.isWritable = isWritable
            $0.lastProgress = now
            if isWritable { $0.becameWritable += 1 } else { $0.becameUnwritable += 1 }
        }
        if isWritable { pump(connection) }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        progress.withLock {
            $0.closed += 1
            $0.closeError = error
        }
    }
}

/// One connection of the many-connections test: sends a frame, checks its echo.
final class OneEcho: TCPConnectionDelegate {
    let expected: [UInt8]
    var got: [UInt8] = []
    let done: @Sendable (Bool) -> Void
    var reported = false

    init(expected: [UInt8], done: @escaping @Sendable (Bool) -> Void) {
        self.expected = expected
        self.done = done
    }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        got.append(contentsOf: bytes)
        if !reported && got.count >= expected.count {
            reported = true
            done(got == expected)
        }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        if !reported {
            reported = true
            done(false)
        }
    }
}
