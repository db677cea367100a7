internal import CLibUV

/// Receives the events of one ``TCPConnection``. Every method is called on the connection's loop.
public protocol TCPConnectionDelegate: AnyObject {
    /// Bytes arrived. They live in a buffer shared by the loop and are valid only during the call:
    /// copy what must outlive it. Output written during the call leaves in one write when it returns.
    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer)
    /// The connection is closed; `error` is nil for an orderly close by either side. Called exactly once.
    func connectionDidClose(_ connection: TCPConnection, error: UVError?)
    /// Outbound data crossed the high watermark (`false`) or fell back below the low one (`true`).
    func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool)
    /// Where the next read should go, when the delegate wants to read straight into its own buffer
    /// (e.g. the rest of a large frame). Nil (the default) means the loop's shared read buffer.
    func connectionReadBuffer(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer?
    /// Bytes were read straight into the buffer returned by ``connectionReadBuffer(_:)``.
    func connectionDidReadDirect(_ connection: TCPConnection, count: Int)
    /// The connection's transform (TLS) failed; the connection closes next. `error` says why.
    func connectionTransformDidFail(_ connection: TCPConnection, error: any Error)
    /// The connection's transform (TLS) finished its handshake: plaintext flows from now on.
    func connectionTransformDidBecomeReady(_ connection: TCPConnection)
}

extension TCPConnectionDelegate {
    public func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {}
    public func connectionReadBuffer(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer? { nil }
    public func connectionDidReadDirect(_ connection: TCPConnection, count: Int) {}
    public func connectionTransformDidFail(_ connection: TCPConnection, error: any Error) {}
    public func connectionTransformDidBecomeReady(_ connection: TCPConnection) {}
}

/// Rewrites a connection's bytes in both directions, e.g. TLS. Loop-confined. Plaintext written to the
/// connection stays buffered until ``canSend`` is true, then goes through ``outbound(_:scratch:emit:)`` once per
/// flush (all frames of a loop turn in one call, so one TLS record holds many frames).
public protocol ConnectionTransform: AnyObject {
    /// Whether plaintext may be sent (TLS: the handshake completed).
    var canSend: Bool { get }
    /// Called once when attached: bytes to send first (a ClientHello) go to `emit`.
    func start(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws
    /// Bytes read from the socket: plaintext to `deliver`, bytes to write back to `emit`.
    func inbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer,
                 deliver: (UnsafeRawBufferPointer) -> Void, emit: (UnsafeRawBufferPointer) -> Void) throws
    /// Plaintext to send: what goes on the wire to `emit`.
    func outbound(_ bytes: UnsafeRawBufferPointer, scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void) throws
    /// A graceful end (TLS close_notify) to `emit`.
    func finish(scratch: UnsafeMutableRawBufferPointer, emit: (UnsafeRawBufferPointer) -> Void)
    /// The connection closed and drops the transform: release what it holds on the loop (timers). Called once.
    func connectionDidClose()
}

extension ConnectionTransform {
    public func connectionDidClose() {}
}

/// A TCP connection on one event loop: reads into the loop's shared buffer, batches writes, and reports
/// writability against watermarks.
///
/// Loop-confined: every method must be called on ``loop``'s thread (the type is `Sendable` only so that a
/// reference can be carried to the loop). Outbound bytes are gathered in a buffer borrowed from the loop's
/// pool and written once per loop turn (or at the end of a read callback): first with `uv_try_write`, and only
/// what the socket did not take goes into a `uv_write_t`, which then owns the buffer (no copy).
/// An idle connection holds neither a read nor a write buffer.
///
/// Not promised: delivery of bytes still queued when the connection is closed with ``close(error:)``
/// (use ``closeAfterFlush()`` for that).
public final class TCPConnection: LoopResource, LoopFlushable, @unchecked Sendable {
    enum State { case open, shuttingDown, closing, closed }

    /// The libuv handle; its `loop` leads to the ``EventLoop`` (the loop's data pointer), so the connection does
    /// not store it. Lives as long as this object (freed in `deinit`), so ``loop`` stays readable after the close.
    let handle: UnsafeMutablePointer<uv_tcp_t>
    /// The delegate, held strongly until the connection closes. Loop-confined.
    public var delegate: (any TCPConnectionDelegate)?

    // Loop-confined state, laid out small (70 bytes, an 80-byte heap block): an idle connection is this object
    // and its libuv handle. Fields are in declaration order: 8-byte ones first, then 32-bit, then bytes.
    private var outBase: UnsafeMutableRawPointer?
    /// State most connections never need (a transform, a close reason, custom watermarks), kept out of line.
    private var extras: Extras?
    private var outCapacity32: UInt32 = 0
    private var outCount32: UInt32 = 0
    /// Bytes handed to libuv and not yet written, saturated at `UInt32.max` (then ``queuedBytes`` asks libuv).
    private var queuedBytes32: UInt32 = 0
    private var state: State = .open
    /// `flushScheduled`, `reading`, `inReadCallback` and `isWritable`, one bit each.
    private var flags: UInt8 = Flag.isWritable

    private enum Flag {
        static let flushScheduled: UInt8 = 1
        static let reading: UInt8 = 2
        static let inReadCallback: UInt8 = 4
        static let isWritable: UInt8 = 8
    }

    @inline(__always)
    private func flag(_ bit: UInt8) -> Bool { flags & bit != 0 }
    @inline(__always)
    private func setFlag(_ bit: UInt8, _ on: Bool) { flags = on ? flags | bit : flags & ~bit }

    private var flushScheduled: Bool {
        get { flag(Flag.flushScheduled) }
        set { setFlag(Flag.flushScheduled, newValue) }
    }
    private var reading: Bool {
        get { flag(Flag.reading) }
        set { setFlag(Flag.reading, newValue) }
    }
    private var inReadCallback: Bool {
        get { flag(Flag.inReadCallback) }
        set { setFlag(Flag.inReadCallback, newValue) }
    }
    /// Whether output is below the high watermark (see ``TCPConnectionDelegate/connectionWritabilityDidChange(_:isWritable:)``).
    public private(set) var isWritable: Bool {
        get { flag(Flag.isWritable) }
        set { setFlag(Flag.isWritable, newValue) }
    }

    /// Bytes handed to libuv and not yet written.
    private var queuedBytes: Int {
        get { queuedBytes32 == .max ? uv_stream_get_write_queue_size(stream) : Int(queuedBytes32) }
        set { queuedBytes32 = UInt32(clamping: newValue) }
    }

    /// The loop the connection lives on: read from the libuv handle (its loop's data pointer), which lives as long
    /// as the connection; not stored, to keep idle connections small. Readable from any thread. The loop must
    /// outlive the connection (loops close their connections when they shut down).
    public var loop: EventLoop {
        @inline(__always) get { EventLoop.of(handle.pointee.loop) }
    }

    /// The plaintext outbound buffer (borrowed from the loop's pool while it holds bytes).
    private var out: UnsafeMutableRawBufferPointer? {
        get { outBase.map { UnsafeMutableRawBufferPointer(start: $0, count: Int(outCapacity32)) } }
        set {
            outBase = newValue?.baseAddress
            outCapacity32 = UInt32(newValue?.count ?? 0)
        }
    }
    private var outCount: Int {
        get { Int(outCount32) }
        set { outCount32 = UInt32(newValue) }
    }

    public static let defaultHighWatermark = 1 << 22
    public static let defaultLowWatermark = 1 << 20
    /// Output above this many bytes (buffered plus queued) makes the connection unwritable.
    public var highWatermark: Int {
        get { extras.map { Int($0.highWatermark32) } ?? Self.defaultHighWatermark }
        set { ensureExtras.highWatermark32 = Int32(clamping: newValue) }
    }
    /// Output at or below this many bytes makes it writable again.
    public var lowWatermark: Int {
        get { extras.map { Int($0.lowWatermark32) } ?? Self.defaultLowWatermark }
        set { ensureExtras.lowWatermark32 = Int32(clamping: newValue) }
    }

    init(loop: EventLoop) {
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.uvLoop, handle)
        uv_handle_set_data(UVHandle.cast(handle), Unmanaged.passRetained(self).toOpaque())
    }

    deinit { handle.deallocate() }

    /// Every TLS connection has one: fields ordered, counts 32-bit and the close error boxed, so that it takes 72
    /// bytes (an 80-byte block, not 128). Loop-confined, like the connection.
    final class Extras {
        /// With a transform: bytes for the wire (ciphertext), gathered apart from the plaintext in `out`.
        var raw: UnsafeMutableRawBufferPointer?
        var transformReady = false
        var rawCount32: UInt32 = 0
        /// Boxed: 8 bytes here instead of 24 for what only failed connections have.
        var closeError: ErrorBox?
        var transform: (any ConnectionTransform)?
        var highWatermark32 = Int32(TCPConnection.defaultHighWatermark)
        var lowWatermark32 = Int32(TCPConnection.defaultLowWatermark)
    }

    final class ErrorBox {
        let error: UVError
        init(_ error: UVError) { self.error = error }
    }

    private var ensureExtras: Extras {
        if let extras { return extras }
        let e = Extras()
        extras = e
        return e
    }

    /// The transform (TLS), if attached.
    public var transform: (any ConnectionTransform)? { extras?.transform }
    private var transformReady: Bool {
        get { extras?.transformReady ?? false }
        set { ensureExtras.transformReady = newValue }
    }
    private var raw: UnsafeMutableRawBufferPointer? {
        get { extras?.raw }
        set { if newValue != nil || extras != nil { ensureExtras.raw = newValue } }
    }
    private var rawCount: Int {
        get { Int(extras?.rawCount32 ?? 0) }
        set { if newValue != 0 || extras != nil { ensureExtras.rawCount32 = UInt32(newValue) } }
    }
    private var closeError: UVError? {
        get { extras?.closeError?.error }
        set { if newValue != nil || extras != nil { ensureExtras.closeError = newValue.map(ErrorBox.init) } }
    }

    @inline(__always)
    static func from<H>(_ h: UnsafeMutablePointer<H>) -> TCPConnection {
        Unmanaged<TCPConnection>.fromOpaque(uv_handle_get_data(UVHandle.cast(h))!).takeUnretainedValue()
    }

    private var stream: UnsafeMutablePointer<uv_stream_t> { UVHandle.stream(handle) }

    /// Whether the connection is open (not closing or closed).
    public var isOpen: Bool { state == .open }

    /// The peer's address, if known.
    public var remoteAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getpeername(handle, $0, &len) }
        }
        return rc == 0 ? SocketAddress.from(&storage) : nil
    }

    /// The local address, if known.
    public var localAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var len = Int32(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getsockname(handle, $0, &len) }
        }
        return rc == 0 ? SocketAddress.from(&storage) : nil
    }

    // MARK: reading

    /// Starts delivering reads to the delegate.
    public func startReading() {
        guard state == .open || state == .shuttingDown, !reading else { return }
        reading = true
        let rc = uv_read_start(stream, { h, suggested, buf in
            let c = TCPConnection.from(h!)
            if c.transform == nil, let direct = c.delegate?.connectionReadBuffer(c) {
                buf!.pointee = uv_buf_init(direct.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(direct.count))
            } else {
                let shared = c.loop.readBuffer
                buf!.pointee = uv_buf_init(shared.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(shared.count))
            }
        }, { s, nread, buf in
            TCPConnection.from(s!).didRead(nread, base: buf!.pointee.base)
        })
        if rc < 0 { close(error: UVError(code: rc, operation: "read")) }
    }

    /// Stops reading (backpressure): the kernel's buffers fill and the peer's writes stall.
    public func stopReading() {
        guard reading else { return }
        reading = false
        if state == .open || state == .shuttingDown { uv_read_stop(stream) }
    }

    /// Whether reads are being delivered.
    public var isReading: Bool { reading }

    private func didRead(_ nread: Int, base: UnsafeMutablePointer<CChar>?) {
        if nread < 0 {
            if nread == Int(UV_EOF.rawValue) {
                close(error: nil)
            } else {
                close(error: UVError(code: Int32(nread), operation: "read"))
            }
            return
        }
        guard nread > 0, let delegate, let base else { return }
        inReadCallback = true
        if let transform {
            let scratch = loop.transformScratch()
            do {
                try transform.inbound(UnsafeRawBufferPointer(start: base, count: nread), scratch: scratch.read,
                                      deliver: { plain in
                                          if !transformReady { becameReady() }
                                          if isOpen { self.delegate?.connectionDidRead(self, plain) }
                                      },
                                      emit: { appendRaw($0) })
                if !transformReady && transform.canSend { becameReady() }
            } catch {
                inReadCallback = false
                flushNow()  // the alert for the peer
                delegate.connectionTransformDidFail(self, error: error)
                closeAfterFlush()
                return
            }
        } else if UnsafeMutableRawPointer(base) == loop.readBuffer.baseAddress {
            delegate.connectionDidRead(self, UnsafeRawBufferPointer(start: base, count: nread))
        } else {
            delegate.connectionDidReadDirect(self, count: nread)
        }
        inReadCallback = false
        if outCount > 0 || rawCount > 0 { flushNow() }
    }

    private func becameReady() {
        transformReady = true
        delegate?.connectionTransformDidBecomeReady(self)
    }

    /// Attaches a transform (TLS) before any byte was exchanged; what it must send first leaves at once.
    public func attachTransform(_ t: any ConnectionTransform) throws {
        precondition(transform == nil, "a connection takes one transform")
        ensureExtras.transform = t
        try t.start(scratch: loop.transformScratch().write) { appendRaw($0) }
        scheduleFlushIfNeeded()
    }

    /// Appends bytes for the wire (after the transform).
    private func appendRaw(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if raw == nil || rawCount + bytes.count > raw!.count {
            if let old = raw {
                let bigger = loop.takeBuffer(minimumCapacity: max(rawCount + bytes.count, old.count * 2))
                bigger.baseAddress!.copyMemory(from: old.baseAddress!, byteCount: rawCount)
                loop.returnBuffer(old)
                raw = bigger
            } else {
                raw = loop.takeBuffer(minimumCapacity: bytes.count)
            }
        }
        (raw!.baseAddress! + rawCount).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        rawCount += bytes.count
    }

    private func scheduleFlushIfNeeded() {
        if !flushScheduled && !inReadCallback {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    // MARK: writing

    /// Number of bytes buffered or queued for writing.
    public var pendingOutboundBytes: Int { outCount + rawCount + queuedBytes }

    /// Appends `bytes` to the outbound buffer. They leave at the end of this loop turn, batched with
    /// everything else written in the same turn. Ignored once the connection is closing.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        withOutbound(reserving: bytes.count) { p in
            p.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return bytes.count
        }
    }

    /// Writes `bytes` to the socket at once, without copying what the socket takes, when nothing else is waiting
    /// to go out (only the rest is copied); otherwise appends them like ``write(_:)``, keeping the order. Meant for
    /// large payloads that already sit in memory (a bulk frame).
    public func writeImmediately(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        guard state == .open, transform == nil, outCount == 0, rawCount == 0, queuedBytes == 0 else {
            write(bytes)
            return
        }
        var b = uv_buf_init(UnsafeMutableRawPointer(mutating: bytes.baseAddress!).assumingMemoryBound(to: CChar.self), UInt32(bytes.count))
        let rc = uv_try_write(stream, &b, 1)
        if rc < 0 && rc != Int32(UV_EAGAIN.rawValue) {
            close(error: UVError(code: rc, operation: "write"))
            return
        }
        let written = max(0, Int(rc))
        if written < bytes.count { write(UnsafeRawBufferPointer(rebasing: bytes[written...])) }
    }

    /// Appends `bytes` (an array or other contiguous collection) to the outbound buffer.
    public func write<C: Collection<UInt8>>(contentsOf bytes: C) {
        let n = bytes.count
        guard n > 0 else { return }
        withOutbound(reserving: n) { p in
            let raw = UnsafeMutableRawBufferPointer(start: p, count: n)
            _ = raw.initializeMemory(as: UInt8.self, from: bytes)
            return n
        }
    }

    /// Lets `body` encode straight into the outbound buffer: it gets room for `reserving` bytes and returns
    /// how many it wrote (at most `reserving`). No copy, no allocation once the loop's pool is warm.
    @inline(__always)
    public func withOutbound(reserving count: Int, _ body: (UnsafeMutableRawPointer) -> Int) {
        guard state == .open else { return }
        if out == nil || outCount + count > out!.count { grow(to: outCount + count) }
        let written = body(out!.baseAddress! + outCount)
        assert(written <= count)
        outCount += written
        scheduleFlushIfNeeded()
        if isWritable && outCount + rawCount + queuedBytes > highWatermark { setWritable(false) }
    }

    private func grow(to needed: Int) {
        if let old = out {
            let bigger = loop.takeBuffer(minimumCapacity: max(needed, old.count * 2))
            bigger.baseAddress!.copyMemory(from: old.baseAddress!, byteCount: outCount)
            loop.returnBuffer(old)
            out = bigger
        } else {
            out = loop.takeBuffer(minimumCapacity: needed)
        }
    }

    /// Writes the outbound buffer now (normally this happens by itself once per loop turn).
    public func flush() { flushNow() }

    public func flushNow() {
        flushScheduled = false
        guard state == .open || state == .shuttingDown else { return }
        if let transform {
            if outCount > 0 && transform.canSend, let plain = out {
                do {
                    try transform.outbound(UnsafeRawBufferPointer(start: plain.baseAddress, count: outCount),
                                           scratch: loop.transformScratch().write) { appendRaw($0) }
                } catch {
                    delegate?.connectionTransformDidFail(self, error: error)
                    close(error: nil)
                    return
                }
                outCount = 0
                out = nil
                loop.returnBuffer(plain)
            }
            guard rawCount > 0, let buffer = raw else { return }
            raw = nil
            let count = rawCount
            rawCount = 0
            writeToSocket(buffer, count)
        } else {
            guard outCount > 0, let buffer = out else { return }
            out = nil
            let count = outCount
            outCount = 0
            writeToSocket(buffer, count)
        }
    }

    /// Writes `count` bytes of `buffer` (which it takes over): `uv_try_write` first, then a write request that
    /// owns the buffer for the rest.
    private func writeToSocket(_ buffer: UnsafeMutableRawBufferPointer, _ count: Int) {
        var written = 0
        if queuedBytes == 0 {
            var b = uv_buf_init(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(count))
            let rc = uv_try_write(stream, &b, 1)
            if rc > 0 {
                written = Int(rc)
            } else if rc < 0 && rc != Int32(UV_EAGAIN.rawValue) {
                loop.returnBuffer(buffer)
                close(error: UVError(code: rc, operation: "write"))
                return
            }
        }
        if written == count {
            loop.returnBuffer(buffer)
            if !isWritable && queuedBytes <= lowWatermark { setWritable(true) }
            return
        }
        // The socket is full: the rest goes into a write request that owns the buffer.
        let rest = count - written
        let req = WriteRequest.allocate(buffer: buffer, loop: loop)
        var b = uv_buf_init((buffer.baseAddress! + written).assumingMemoryBound(to: CChar.self), UInt32(rest))
        let rc = uv_write(req, stream, &b, 1) { req, status in
            let (buffer, loop) = WriteRequest.release(req!)
            let c = TCPConnection.from(req!.pointee.handle!)
            loop.returnBuffer(buffer)
            c.didWrite(status: status)
        }
        if rc < 0 {
            let (buffer, _) = WriteRequest.release(req)
            loop.returnBuffer(buffer)
            close(error: UVError(code: rc, operation: "write"))
            return
        }
        queuedBytes = uv_stream_get_write_queue_size(stream)
        if isWritable && queuedBytes > highWatermark { setWritable(false) }
    }

    private func didWrite(status: Int32) {
        if status < 0 {
            if status != Int32(UV_ECANCELED.rawValue) { close(error: UVError(code: status, operation: "write")) }
            return
        }
        queuedBytes = uv_stream_get_write_queue_size(stream)
        if !isWritable && outCount + rawCount + queuedBytes <= lowWatermark { setWritable(true) }
    }

    private func setWritable(_ writable: Bool) {
        isWritable = writable
        delegate?.connectionWritabilityDidChange(self, isWritable: writable)
    }

    // MARK: closing

    /// Closes at once. Buffered and queued output is dropped. The delegate hears `connectionDidClose`
    /// from the close callback, on a later loop turn. Idempotent.
    public func close(error: UVError? = nil) {
        guard state == .open || state == .shuttingDown else { return }
        state = .closing
        closeError = error
        uv_close(UVHandle.cast(handle)) { h in
            TCPConnection.from(h!).didClose()
        }
    }

    /// Closes with a TCP reset (RST) instead of FIN, so the peer sees ECONNRESET.
    public func reset() {
        guard state == .open || state == .shuttingDown else { return }
        state = .closing
        closeError = nil
        // libuv refuses a reset while a shutdown is pending: then it is an ordinary close.
        if uv_tcp_close_reset(handle, { h in TCPConnection.from(h!).didClose() }) < 0 {
            uv_close(UVHandle.cast(handle)) { h in TCPConnection.from(h!).didClose() }
        }
    }

    /// Writes what is buffered, then shuts the write side down and closes once the peer has it all
    /// (or on any error).
    public func closeAfterFlush() {
        guard state == .open else { return }
        flushNow()
        if let transform, transformReady {
            transform.finish(scratch: loop.transformScratch().write) { appendRaw($0) }
            flushNow()
        }
        guard state == .open else { return }
        state = .shuttingDown
        let req = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        let rc = uv_shutdown(req, stream) { req, _ in
            let c = TCPConnection.from(req!.pointee.handle!)
            req!.deallocate()
            // Unless close() or reset() came first (then this callback reports ECANCELED), close now.
            if c.state == .shuttingDown { c.close(error: nil) }
        }
        if rc < 0 {
            req.deallocate()
            close(error: nil)
        }
    }

    private func didClose() {
        state = .closed
        if let buffer = out {
            loop.returnBuffer(buffer)
            out = nil
            outCount = 0
        }
        if let buffer = raw {
            loop.returnBuffer(buffer)
            raw = nil
            rawCount = 0
        }
        extras?.transform?.connectionDidClose()
        extras?.transform = nil
        let d = delegate
        delegate = nil
        d?.connectionDidClose(self, error: closeError)
        Unmanaged.passUnretained(self).release()
    }

    func closeForShutdown() { close(error: UVError(code: Int32(UV_ECANCELED.rawValue), operation: "event loop shutdown")) }
}

/// A `uv_write_t` followed by the buffer it owns, in one allocation.
enum WriteRequest {
    struct Tail {
        var buffer: UnsafeMutableRawBufferPointer
        var loop: Unmanaged<EventLoop>
    }
    static let tailOffset = (MemoryLayout<uv_write_t>.size + 15) & ~15
    static let size = tailOffset + MemoryLayout<Tail>.size

    static func allocate(buffer: UnsafeMutableRawBufferPointer, loop: EventLoop) -> UnsafeMutablePointer<uv_write_t> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        (raw + tailOffset).initializeMemory(as: Tail.self, repeating: Tail(buffer: buffer, loop: .passUnretained(loop)), count: 1)
        return raw.bindMemory(to: uv_write_t.self, capacity: 1)
    }

    static func release(_ req: UnsafeMutablePointer<uv_write_t>) -> (UnsafeMutableRawBufferPointer, EventLoop) {
        let raw = UnsafeMutableRawPointer(req)
        let tail = (raw + tailOffset).load(as: Tail.self)
        raw.deallocate()
        return (tail.buffer, tail.loop.takeUnretainedValue())
    }
}
