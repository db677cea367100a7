internal import CLibUV
import Glibc
import Synchronization

/// A TCP listener spread over the loops of a group: one `SO_REUSEPORT` socket per loop, so the kernel
/// balances new connections over the loops with no hand-off between threads.
///
/// Accept keeps working through fd exhaustion: libuv keeps a spare descriptor and, on `EMFILE`, uses it to
/// accept and close pending connections (so they fail fast instead of hanging in the backlog); existing
/// connections are unaffected, and accepting resumes by itself once descriptors are free. Failed accepts
/// are counted in ``acceptErrors``.
///
/// Thread-safe. Not promised: an even spread of connections over loops (the kernel hashes by address).
public final class TCPListener: Sendable {
    /// The bound address (with the real port when port 0 was asked for).
    public let localAddress: SocketAddress
    private let perLoop: [LoopListener]
    private let counter: ErrorCounter

    /// Accepts that failed (e.g. EMFILE) since the listener started.
    public var acceptErrors: Int { counter.count.load(ordering: .relaxed) }

    private init(localAddress: SocketAddress, perLoop: [LoopListener], counter: ErrorCounter) {
        self.localAddress = localAddress
        self.perLoop = perLoop
        self.counter = counter
    }

    /// Binds `address` on every loop in `loops` and starts accepting. `onAccept` runs on the loop that owns
    /// the new connection; it must set the connection's delegate and start reading.
    public static func bind(
        loops: [EventLoop],
        address: SocketAddress,
        backlog: Int32 = 1024,
        onAccept: @escaping @Sendable (TCPConnection) -> Void
    ) async throws -> TCPListener {
        precondition(!loops.isEmpty)
        // SO_REUSEPORT would let a second server of the same user share a busy port silently: probe it first.
        if address.port != 0 { try probeFree(address) }
        var fds: [Int32] = []
        var bound = address
        do {
            for _ in loops {
                let fd = try openListeningSocket(bound)
                fds.append(fd)
                if bound.port == 0 { bound = try boundAddress(fd) }
            }
        } catch {
            for fd in fds { Glibc.close(fd) }
            throw error
        }
        let counter = ErrorCounter()
        var listeners: [LoopListener] = []
        for (i, loop) in loops.enumerated() {
            let fd = fds[i]
            do {
                let l = try await loop.submit {
                    try LoopListener(loop: loop, fd: fd, backlog: backlog, counter: counter, onAccept: onAccept)
                }
                listeners.append(l)
            } catch {
                for l in listeners { await l.closeAndWait() }
                // LoopListener.init owns fds[i] once it runs (it closes it on failure); a rejected submit never ran it.
                for fd in fds[(error is EventLoopError ? i : i + 1)...] { Glibc.close(fd) }
                throw error
            }
        }
        return TCPListener(localAddress: bound, perLoop: listeners, counter: counter)
    }

    /// Stops accepting and closes the listening sockets. Existing connections stay open.
    public func close() async {
        for l in perLoop { await l.closeAndWait() }
    }

    private static func openListeningSocket(_ address: SocketAddress) throws(UVError) -> Int32 {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw UVError(code: -errno, operation: "socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.withSockAddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc != 0 {
            let e = errno
            Glibc.close(fd)
            throw UVError(code: -e, operation: "bind \(address)")
        }
        return fd
    }

    /// Throws EADDRINUSE when `address` is already bound (by anyone), using a socket without SO_REUSEPORT.
    private static func probeFree(_ address: SocketAddress) throws(UVError) {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw UVError(code: -errno, operation: "socket") }
        defer { Glibc.close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc = address.withSockAddr { sa, len in Glibc.bind(fd, sa, len) }
        if rc != 0 { throw UVError(code: -errno, operation: "bind \(address)") }
    }

    private static func boundAddress(_ fd: Int32) throws(UVError) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0, let a = SocketAddress.from(&storage) else { throw UVError(code: -errno, operation: "getsockname") }
        return a
    }
}

/// Failed accepts, counted by every loop's listener.
private final class ErrorCounter: Sendable {
    let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
}

/// The listening socket on one loop. Loop-confined except for `closeAndWait`.
///
/// Accepts itself (a `uv_poll_t` on the listening fd, `accept4` in a bounded loop) instead of `uv_listen`, so that
/// it sees EMFILE/ENFILE: libuv's own spare-fd trick drops the pending connections without telling the caller.
/// On EMFILE it closes its spare descriptor, accepts and closes what is pending (counting each), reopens the spare
/// and pauses accepting for `backoffMilliseconds`.
private final class LoopListener: LoopResource, @unchecked Sendable {
    unowned let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_poll_t>
    let fd: Int32
    var spare: Int32
    var pause: LoopTimer?
    let onAccept: @Sendable (TCPConnection) -> Void
    let counter: ErrorCounter
    var closed = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var fullyClosed = false
    static let backoffMilliseconds: UInt64 = 1000

    init(loop: EventLoop, fd: Int32, backlog: Int32, counter: ErrorCounter, onAccept: @escaping @Sendable (TCPConnection) -> Void) throws {
        self.loop = loop
        self.onAccept = onAccept
        self.counter = counter
        self.fd = fd
        spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
        handle = .allocate(capacity: 1)
        var rc = Glibc.listen(fd, backlog) == 0 ? Int32(0) : -errno
        if rc == 0 { rc = uv_poll_init_socket(loop.uvLoop, handle, fd) }
        if rc < 0 {
            handle.deallocate()
            Glibc.close(fd)
            if spare >= 0 { Glibc.close(spare) }
            throw UVError(code: rc, operation: "listen")
        }
        uv_handle_set_data(UVHandle.cast(handle), Unmanaged.passRetained(self).toOpaque())
        start()
    }

    private func start() {
        uv_poll_start(handle, Int32(UV_READABLE.rawValue)) { h, _, _ in
            Unmanaged<LoopListener>.fromOpaque(uv_handle_get_data(UVHandle.cast(h!))!).takeUnretainedValue().acceptReady()
        }
    }

    func acceptReady() {
        for _ in 0..<128 {  // bounded, so that one busy listener does not starve the loop
            let cfd = Glibc.accept(fd, nil, nil)
            if cfd >= 0 {
                _ = fcntl(cfd, F_SETFD, FD_CLOEXEC)
                let connection = TCPConnection(loop: loop)
                let rc = uv_tcp_open(connection.handle, uv_os_sock_t(cfd))
                if rc < 0 {
                    Glibc.close(cfd)
                    counter.add()
                    connection.close(error: UVError(code: rc, operation: "accept"))
                    continue
                }
                uv_tcp_nodelay(connection.handle, 1)
                onAccept(connection)
                continue
            }
            let e = errno
            if e == EAGAIN || e == EWOULDBLOCK { return }
            if e == EINTR || e == ECONNABORTED { continue }
            counter.add()
            if e == EMFILE || e == ENFILE {
                // Use the spare descriptor to take the pending connections off the queue and close them, so their
                // clients fail fast instead of hanging, then back off.
                if spare >= 0 { Glibc.close(spare); spare = -1 }
                while true {
                    let dropped = Glibc.accept(fd, nil, nil)
                    if dropped < 0 { break }
                    Glibc.close(dropped)
                    counter.add()
                }
                spare = open("/dev/null", O_RDONLY | O_CLOEXEC)
                uv_poll_stop(handle)
                pause = LoopTimer(loop: loop, timeout: Self.backoffMilliseconds) { [unowned self] _ in
                    pause = nil
                    if !closed { start() }
                }
            }
            return
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        pause?.cancel()
        pause = nil
        uv_poll_stop(handle)
        uv_close(UVHandle.cast(handle)) { h in
            let l = Unmanaged<LoopListener>.fromOpaque(uv_handle_get_data(h!)!).takeRetainedValue()
            l.handle.deallocate()
            Glibc.close(l.fd)
            if l.spare >= 0 { Glibc.close(l.spare) }
            l.fullyClosed = true
            for w in l.closeWaiters { w.resume() }
            l.closeWaiters.removeAll()
        }
    }

    func closeForShutdown() { close() }

    func closeAndWait() async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let accepted = loop.execute { [self] in
                if fullyClosed { cont.resume(); return }
                closeWaiters.append(cont)
                close()
            }
            if !accepted { cont.resume() }
        }
    }
}
