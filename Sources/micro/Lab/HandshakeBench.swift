import Glibc
import MicroEventLoop
import MicroTLS
import MicroUVTransport
import Synchronization

/// Measures TLS handshakes per second against an embedded TLS echo server: full handshakes (a fresh client
/// context each time, so nothing to resume) and resumed ones (one context, whose tickets are reused). Each
/// iteration connects, completes the handshake, echoes one frame (which also brings the session ticket) and closes.
enum HandshakeBench {
    static func run(count: Int) async throws {
        let dir = "/tmp/micro-bench-tls-\(getpid())"
        let script = """
        set -e; mkdir -p \(dir); cd \(dir)
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 1 \
          -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
        """
        guard system(script) == 0 else { throw CLIError("openssl could not make a test certificate", .unavailable) }
        defer { _ = system("rm -rf \(dir)") }

        let serverContext = try TLSContext(role: .server, configuration: .server(certificateFile: dir + "/cert.pem", keyFile: dir + "/key.pem"))
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let listener = try await TCPListener.bind(loops: serverGroup.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            do { try TLSTransform.attach(to: tcp, context: serverContext) } catch { tcp.close(); return }
            LengthPrefixedConnection.echo(tcp)
        }
        var clientConfig = TLSConfiguration.client(trusting: dir + "/cert.pem")
        clientConfig.serverName = "localhost"
        let loop = clientGroup.loops[0]

        func measure(_ label: String, newContextEachTime: Bool) async throws {
            let shared = try TLSContext(role: .client, configuration: clientConfig)
            // Warm up (and, for resumption, get a first ticket).
            _ = try await once(loop, listener.localAddress, shared)
            var resumed = 0
            let cpu0 = await LoopCPU.micros(serverGroup.loops)
            let start = ContinuousClock.now
            for _ in 0..<count {
                let context = newContextEachTime ? try TLSContext(role: .client, configuration: clientConfig) : shared
                if try await once(loop, listener.localAddress, context) { resumed += 1 }
            }
            let elapsed = ContinuousClock.now - start
            let cpu1 = await LoopCPU.micros(serverGroup.loops)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let rate = Double(count) / seconds
            say("\(label): \(Int(rate)) handshakes/s (\(count) sequential, each with one echo), \(resumed) resumed, server CPU \(Int((cpu1 - cpu0) / Double(count))) µs per handshake")
        }
        try await measure("TLS full handshakes", newContextEachTime: true)
        try await measure("TLS resumed handshakes", newContextEachTime: false)
        await listener.close()
        _ = clientGroup.shutdownGracefully()
        _ = serverGroup.shutdownGracefully()
    }

    /// One connection: handshake, one echoed frame, close. Returns whether the session was resumed.
    static func once(_ loop: EventLoop, _ address: SocketAddress, _ context: TLSContext) async throws -> Bool {
        let tcp = try await TCPConnection.connect(on: loop, to: address)
        let waiter = EchoWaiter()
        let resumed: Bool = try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Bool, any Error>) in
            loop.execute {
                waiter.continuation = cont
                tcp.delegate = waiter
                do {
                    waiter.transform = try TLSTransform.attach(to: tcp, context: context, serverName: "localhost")
                } catch {
                    waiter.finish(.failure(error))
                    return
                }
                tcp.startReading()
                tcp.write(contentsOf: [0, 0, 0, 1, 42])
            }
        }
        try await loop.submit { tcp.close() }
        return resumed
    }
}

/// Waits (on the loop) for the echo of one 5-byte frame over TLS.
final class EchoWaiter: TCPConnectionDelegate, @unchecked Sendable {
    var continuation: CheckedContinuation<Bool, any Error>?
    var transform: TLSTransform?
    var received = 0

    func finish(_ result: Result<Bool, any Error>) {
        guard let c = continuation else { return }
        continuation = nil
        c.resume(with: result)
    }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        received += bytes.count
        if received >= 5 { finish(.success(transform?.session.isResumed ?? false)) }
    }

    func connectionTransformDidFail(_ connection: TCPConnection, error: any Error) { finish(.failure(error)) }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        finish(.failure(error ?? UVError(code: UVError.connectionReset, operation: "closed before the echo")))
    }
}
