internal import CLibUV

extension TCPConnection {
    /// Connects to `address` on `loop`. Loop-confined: call on `loop`; `completion` runs there exactly once,
    /// with the connection (not yet reading) or the error. A connect that takes longer than `timeoutMilliseconds`
    /// fails with `ETIMEDOUT`.
    public static func connect(
        on loop: EventLoop,
        to address: SocketAddress,
        timeoutMilliseconds: UInt64 = 10_000,
        completion: @escaping (Result<TCPConnection, UVError>) -> Void
    ) {
        loop.preconditionInEventLoop()
        let connection = TCPConnection(loop: loop)
        uv_tcp_nodelay(connection.handle, 1)
        let attempt = ConnectAttempt(connection: connection, completion: completion)
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        uv_req_set_data(UnsafeMutableRawPointer(req).assumingMemoryBound(to: uv_req_t.self), Unmanaged.passRetained(attempt).toOpaque())
        let rc = address.withSockAddr { sa, _ in
            uv_tcp_connect(req, connection.handle, sa) { req, status in
                let attempt = Unmanaged<ConnectAttempt>.fromOpaque(
                    uv_req_get_data(UnsafeMutableRawPointer(req!).assumingMemoryBound(to: uv_req_t.self))!
                ).takeRetainedValue()
                req!.deallocate()
                attempt.finish(status: status)
            }
        }
        if rc < 0 {
            Unmanaged.passUnretained(attempt).release()
            req.deallocate()
            connection.close(error: UVError(code: rc, operation: "connect \(address)"))
            completion(.failure(UVError(code: rc, operation: "connect \(address)")))
            return
        }
        attempt.address = address
        attempt.timer = LoopTimer(loop: loop, timeout: timeoutMilliseconds) { [weak attempt] _ in
            attempt?.timedOut()
        }
    }

    /// Connects to `address` on `loop` from any context.
    public static func connect(
        on loop: EventLoop,
        to address: SocketAddress,
        timeoutMilliseconds: UInt64 = 10_000
    ) async throws -> TCPConnection {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<TCPConnection, any Error>) in
            let accepted = loop.execute {
                connect(on: loop, to: address, timeoutMilliseconds: timeoutMilliseconds) { result in
                    cont.resume(with: result.mapError { $0 as any Error })
                }
            }
            if !accepted { cont.resume(throwing: EventLoopError.shutdown) }
        }
    }
}

/// Loop-confined bookkeeping of one connect: exactly one completion, whichever of connect, timeout or
/// failure comes first.
private final class ConnectAttempt {
    let connection: TCPConnection
    var completion: ((Result<TCPConnection, UVError>) -> Void)?
    var timer: LoopTimer?
    var address: SocketAddress?

    init(connection: TCPConnection, completion: @escaping (Result<TCPConnection, UVError>) -> Void) {
        self.connection = connection
        self.completion = completion
    }

    func finish(status: Int32) {
        timer?.cancel()
        timer = nil
        guard let completion else { return }
        self.completion = nil
        if status < 0 {
            let error = UVError(code: status, operation: "connect \(address.map { "\($0)" } ?? "")")
            connection.close(error: error)
            completion(.failure(error))
        } else if !connection.isOpen {
            completion(.failure(UVError(code: Int32(UV_ECANCELED.rawValue), operation: "connect")))
        } else {
            completion(.success(connection))
        }
    }

    func timedOut() {
        timer = nil
        guard let completion else { return }
        self.completion = nil
        let error = UVError(code: Int32(UV_ETIMEDOUT.rawValue), operation: "connect \(address.map { "\($0)" } ?? "")")
        // Closing cancels the connect request; its callback then finds no completion left.
        connection.close(error: error)
        completion(.failure(error))
    }
}
