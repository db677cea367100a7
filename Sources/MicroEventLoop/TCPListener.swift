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
                for fd in fds[(i + 1)...] { Glibc.close(fd) }
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

/// The listening handle on one loop. Loop-confined except for `closeAndWait`.
private final class LoopListener: LoopResource, @unchecked Sendable {
    unowned let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_tcp_t>
    let onAccept: @Sendable (TCPConnection) -> Void
    let counter: ErrorCounter
    var closed = false
    var closeWaiters: [CheckedContinuation<Void, Never>] = []
    var fullyClosed = false

    init(loop: EventLoop, fd: Int32, backlog: Int32, counter: ErrorCounter, onAccept: @escaping @Sendable (TCPConnection) -> Void) throws {
        self.loop = loop
        self.onAccept = onAccept
        self.counter = counter
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.uvLoop, handle)
        uv_handle_set_data(UVHandle.cast(handle), Unmanaged.passRetained(self).toOpaque())
        var rc = uv_tcp_open(handle, uv_os_sock_t(fd))
        if rc == 0 {
            rc = uv_listen(UVHandle.stream(handle), backlog) { server, status in
                let l = Unmanaged<LoopListener>.fromOpaque(uv_handle_get_data(UVHandle.cast(server!))!).takeUnretainedValue()
                l.accept(status: status)
            }
        }
        if rc < 0 {
            close()
            throw UVError(code: rc, operation: "listen")
        }
    }

    func accept(status: Int32) {
        if status < 0 {
            // EMFILE/ENFILE: libuv already used its spare fd to accept and drop the pending connection.
            counter.add()
            return
        }
        let connection = TCPConnection(loop: loop)
        let rc = uv_accept(UVHandle.stream(handle), UVHandle.stream(connection.handle))
        if rc < 0 {
            counter.add()
            connection.close(error: UVError(code: rc, operation: "accept"))
            return
        }
        uv_tcp_nodelay(connection.handle, 1)
        onAccept(connection)
    }

    func close() {
        guard !closed else { return }
        closed = true
        uv_close(UVHandle.cast(handle)) { h in
            let l = Unmanaged<LoopListener>.fromOpaque(uv_handle_get_data(h!)!).takeRetainedValue()
            l.handle.deallocate()
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
