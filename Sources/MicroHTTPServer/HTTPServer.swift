public import MicroEventLoop
import Synchronization

/// An HTTP/1.1 server on libuv loops: keep-alive, pipelined requests answered in order, `Content-Length` and
/// chunked request bodies, `Expect: 100-continue`, and limits on everything a client can make it hold
/// (``HTTPServerConfiguration``): oversized or malformed requests are answered (400, 408, 413, 414, 431, 501, 505)
/// and the connection closed; idle connections are closed.
///
/// Thread-safe. Not promised: HTTP/2, upgrades, streaming bodies (requests and responses are whole), TLS.
public final class HTTPServer: Sendable {
    /// The bound address (the real port when port 0 was asked for).
    public let localAddress: SocketAddress
    let configuration: HTTPServerConfiguration
    let handler: HTTPHandler
    /// Set once bound; nil once closed (which breaks the cycle through the accept callback). Guarded by its mutex.
    private let listener = Mutex<TCPListener?>(nil)
    /// Open connections, for a graceful close. Guarded by its mutex; touched on accept and close only.
    let connections = Mutex<[ObjectIdentifier: HTTPServerConnection]>([:])

    private init(localAddress: SocketAddress, configuration: HTTPServerConfiguration, handler: @escaping HTTPHandler) {
        self.localAddress = localAddress
        self.configuration = configuration
        self.handler = handler
    }

    /// Binds `address` on every loop of `group` and serves with `handler`.
    public static func start(group: EventLoopGroup, address: SocketAddress, configuration: HTTPServerConfiguration = HTTPServerConfiguration(),
                             handler: @escaping HTTPHandler) async throws -> HTTPServer {
        let pending = PendingServer()
        let listener = try await TCPListener.bind(loops: group.loops, address: address) { connection in
            guard let server = pending.server.withLock({ $0 }) else {
                connection.close()
                return
            }
            server.accept(connection)
        }
        let server = HTTPServer(localAddress: listener.localAddress, configuration: configuration, handler: handler)
        server.listener.withLock { $0 = listener }
        pending.server.withLock { $0 = server }
        return server
    }

    /// On the accepting loop.
    private func accept(_ tcp: TCPConnection) {
        let connection = HTTPServerConnection(tcp, server: self)
        let admitted = connections.withLock { open -> Bool in
            guard open.count < configuration.maxConnections else { return false }
            open[ObjectIdentifier(connection)] = connection
            return true
        }
        tcp.delegate = connection
        if admitted {
            connection.begin()
        } else {
            connection.refuse()
        }
    }

    func remove(_ connection: HTTPServerConnection) {
        _ = connections.withLock { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    /// Open connections.
    public var connectionCount: Int { connections.withLock { $0.count } }

    /// Stops accepting, closes idle connections at once and the others after their response under way, within
    /// `gracePeriod` (then closes them too).
    public func close(gracePeriod: Duration = .seconds(5)) async {
        if let listener = listener.withLock({ l -> TCPListener? in defer { l = nil }; return l }) { await listener.close() }
        let open = connections.withLock { Array($0.values) }
        for connection in open { _ = connection.loop.execute { connection.closeWhenIdle() } }
        let deadline = ContinuousClock.now + gracePeriod
        while connectionCount > 0 && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        let left = connections.withLock { Array($0.values) }
        for connection in left { _ = connection.loop.execute { connection.closeNow() } }
        while connectionCount > 0 { try? await Task.sleep(for: .milliseconds(5)) }
    }
}

/// Lets the accept callback, made before the server exists, find it. A connection accepted in between (before
/// `start` returns) is closed.
private final class PendingServer: Sendable {
    let server = Mutex<HTTPServer?>(nil)
}
