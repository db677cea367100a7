import Dispatch
import Foundation
import Glibc
import MicroEventLoop
import Synchronization
import Testing

/// A value shared between the loop's thread and the test, behind a mutex.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    @discardableResult
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// A value touched only on one loop's thread; the box is Sendable so that loop closures can carry it.
final class LoopConfined<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Runs `body(i)` for i in 0..<count, each on its own new thread (not on Dispatch's or Swift concurrency's
/// shared pools, which a busy producer would starve), and waits for all of them without blocking.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let left = Atomic<Int>(count)
        for i in 0..<count {
            let t = Thread {
                body(i)
                if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { done.resume() }
            }
            t.start()
        }
    }
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes. Returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Shuts `group` down and records an issue unless every loop closed clean.
func shutdownClean(_ group: EventLoopGroup, sourceLocation: SourceLocation = #_sourceLocation) {
    let clean = group.shutdownGracefully()
    #expect(clean, "uv_loop_close did not return 0 on every loop", sourceLocation: sourceLocation)
    for loop in group.loops {
        #expect(loop.loopCloseResult == 0, sourceLocation: sourceLocation)
    }
}

/// A 4-byte big-endian length prefix + payload.
func lengthPrefixedFrame(_ payload: [UInt8]) -> [UInt8] {
    let n = UInt32(payload.count)
    return [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + payload
}

func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) &+ seed &* 7 &+ ($0 >> 8)) }
}

/// Test-side splitter for the plain length-prefixed mode (the test target does not link MicroFraming).
/// Supports direct reads for large frames, like the transport's echo handler.
struct LengthPrefixedSplitter {
    var pending: [UInt8] = []
    var directBuffer: UnsafeMutableRawBufferPointer?
    var directFilled = 0
    let maxPayload: Int

    init(maxPayload: Int) { self.maxPayload = maxPayload }

    /// Returns false on a frame over the limit.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ onFrame: (UnsafeRawBufferPointer) -> Void) -> Bool {
        pending.append(contentsOf: bytes)
        var start = 0
        while pending.count - start >= 4 {
            let n = Int(pending[start]) << 24 | Int(pending[start + 1]) << 16 | Int(pending[start + 2]) << 8 | Int(pending[start + 3])
            if n > maxPayload { return false }
            if pending.count - start < 4 + n {
                // Large and incomplete: read the rest directly into a buffer of its own.
                if 4 + n - (pending.count - start) >= 16 * 1024 {
                    let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 + n, alignment: 16)
                    let have = pending.count - start
                    pending[start...].withUnsafeBytes { b.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: have) }
                    directBuffer = b
                    directFilled = have
                    pending.removeAll(keepingCapacity: false)
                    return true
                }
                break
            }
            pending.withUnsafeBytes { onFrame(UnsafeRawBufferPointer(rebasing: $0[start..<(start + 4 + n)])) }
            start += 4 + n
        }
        pending.removeFirst(start)
        return true
    }

    func readBuffer() -> UnsafeMutableRawBufferPointer? {
        guard let b = directBuffer else { return nil }
        return UnsafeMutableRawBufferPointer(rebasing: b[directFilled...])
    }

    mutating func didReadDirect(_ count: Int, _ onFrame: (UnsafeRawBufferPointer) -> Void) {
        guard let b = directBuffer else { return }
        directFilled += count
        if directFilled == b.count {
            onFrame(UnsafeRawBufferPointer(b))
            b.deallocate()
            directBuffer = nil
            directFilled = 0
        }
    }

    mutating func release() {
        directBuffer?.deallocate()
        directBuffer = nil
    }
}

/// What a server-side echo connection saw, readable from the test.
struct EchoStats: Sendable {
    var bytesIn = 0
    var framesEchoed = 0
    var maxPendingOutbound = 0
    var wentUnwritable = 0
    var wentWritable = 0
    var stoppedReading = false
    var closed = 0
    var closeError: UVError?
    var directReads = 0
}

/// Echoes every length-prefixed frame back, stops reading while the connection is unwritable (the same
/// policy as MicroUVTransport's LengthPrefixedEchoHandler) and records what happened.
final class EchoHandler: TCPConnectionDelegate {
    let stats: Locked<EchoStats>
    var splitter: LengthPrefixedSplitter

    init(stats: Locked<EchoStats>, maxPayload: Int = 16 << 20) {
        self.stats = stats
        splitter = LengthPrefixedSplitter(maxPayload: maxPayload)
    }

    private func echo(_ connection: TCPConnection, _ frame: UnsafeRawBufferPointer) {
        connection.write(frame)
        let pending = connection.pendingOutboundBytes
        stats.withLock {
            $0.framesEchoed += 1
            $0.maxPendingOutbound = max($0.maxPendingOutbound, pending)
        }
    }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        stats.withLock { $0.bytesIn += bytes.count }
        if !splitter.feed(bytes, { echo(connection, $0) }) { connection.close(error: nil) }
    }

    func connectionReadBuffer(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer? { splitter.readBuffer() }

    func connectionDidReadDirect(_ connection: TCPConnection, count: Int) {
        stats.withLock {
            $0.bytesIn += count
            $0.directReads += 1
        }
        splitter.didReadDirect(count) { echo(connection, $0) }
    }

    func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        if isWritable {
            stats.withLock { $0.wentWritable += 1; $0.stoppedReading = false }
            connection.startReading()
        } else {
            connection.stopReading()
            stats.withLock { $0.wentUnwritable += 1; $0.stoppedReading = !connection.isReading }
        }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        splitter.release()
        stats.withLock {
            $0.closed += 1
            $0.closeError = error
        }
    }

    /// Serves `connection` with a new echo handler reporting into `stats`.
    static func serve(_ connection: TCPConnection, stats: Locked<EchoStats>) {
        connection.delegate = EchoHandler(stats: stats)
        connection.startReading()
    }
}

/// What a client connection saw.
struct ClientStats: Sendable {
    var received: [UInt8] = []
    var closed = 0
    var closeError: UVError?
    var writability: [Bool] = []
}

/// Collects everything read and the close.
final class Collector: TCPConnectionDelegate {
    let stats: Locked<ClientStats>
    init(stats: Locked<ClientStats>) { self.stats = stats }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        stats.withLock { $0.received.append(contentsOf: bytes) }
    }

    func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        stats.withLock { $0.writability.append(isWritable) }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        stats.withLock {
            $0.closed += 1
            $0.closeError = error
        }
    }
}

/// A client connection with a collector, reading.
struct TestClient: Sendable {
    let connection: TCPConnection
    let stats: Locked<ClientStats>

    static func connect(on loop: EventLoop, to address: SocketAddress) async throws -> TestClient {
        let connection = try await TCPConnection.connect(on: loop, to: address)
        let stats = Locked(ClientStats())
        try await loop.submit {
            connection.delegate = Collector(stats: stats)
            connection.startReading()
        }
        return TestClient(connection: connection, stats: stats)
    }

    func send(_ bytes: [UInt8]) async throws {
        let c = connection
        try await c.loop.submit { c.write(contentsOf: bytes) }
    }

    /// Sends `payload` as one frame and waits until the same frame came back.
    func echo(_ payload: [UInt8], timeout: Duration = .seconds(10)) async throws -> Bool {
        let frame = lengthPrefixedFrame(payload)
        let before = stats.value.received.count
        try await send(frame)
        let s = stats
        let ok = await eventually(timeout: timeout) { s.value.received.count >= before + frame.count }
        let got = stats.value.received
        return ok && got.count == before + frame.count && Array(got[before...]) == frame
    }

    func close() async throws {
        let c = connection
        try await c.loop.submit { c.close() }
    }

    var closed: Bool { stats.value.closed > 0 }
}

/// A raw fd helper: a bound (not listening) loopback socket, so that connecting to its port is refused.
final class BoundSocket {
    let fd: Int32
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UVError(code: -errno, operation: "socket") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard rc == 0 else { close(fd); throw UVError(code: -errno, operation: "bind") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    deinit { close(fd) }
}

/// The process's RLIMIT_NOFILE.
func fileLimit() -> rlimit {
    var r = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &r)
    return r
}

@discardableResult
func setFileLimit(soft: rlim_t) -> Bool {
    var r = fileLimit()
    r.rlim_cur = min(soft, r.rlim_max)
    return setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &r) == 0
}

/// Number of open file descriptors of this process.
func openFDCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var n = 0
    while readdir(dir) != nil { n += 1 }
    return n - 3  // ".", "..", and the directory's own fd
}

let loopback = { () -> SocketAddress in try! SocketAddress(host: "127.0.0.1", port: 0) }()
