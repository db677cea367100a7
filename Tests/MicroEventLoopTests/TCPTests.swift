import Glibc
import MicroEventLoop
import Synchronization
import Testing

@Suite("TCP")
struct TCPTests {
    @Test("listening on port 0 reports the real port, on every loop of the group")
    func listenOnPortZero() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: group.loops)
        #expect(server.address.port > 0)
        #expect(server.address.host == "127.0.0.1")
        // Connections spread over both loops' sockets all get served.
        var clients: [TestClient] = []
        for i in 0..<8 {
            let client = try await TestClient.connect(on: group.loops[i % 2], to: server.address)
            #expect(client.connection.loop === group.loops[i % 2])
            #expect(try await client.echo([UInt8(i)]))
            let remote = try await client.connection.loop.submit { [c = client.connection] in c.remoteAddress }
            #expect(remote == server.address)
            let local = try await client.connection.loop.submit { [c = client.connection] in c.localAddress }
            #expect(local?.host == "127.0.0.1" && (local?.port ?? 0) > 0)
            clients.append(client)
        }
        #expect(server.count == 8)
        shutdownClean(group)
    }

    @Test("connect + echo round trip: small frames, many frames in one write, and a 3 MiB frame")
    func echoRoundTrip() async throws {
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let server = try await EchoServer.start(on: serverGroup.loops)
        let client = try await TestClient.connect(on: clientGroup.loops[0], to: server.address)
        #expect(try await client.echo(Array("hello".utf8)))
        #expect(try await client.echo([]))
        // 100 frames in one write come back in order.
        let frames = (0..<100).map { lengthPrefixedFrame(pattern($0 * 3, seed: $0)) }
        let before = client.stats.value.received.count
        try await client.send(frames.flatMap { $0 })
        let total = frames.reduce(0) { $0 + $1.count }
        #expect(await eventually { client.stats.value.received.count >= before + total })
        #expect(Array(client.stats.value.received[before...]) == frames.flatMap { $0 })
        // A large frame: the server reads most of it straight into its own buffer.
        #expect(try await client.echo(pattern(3 << 20, seed: 9), timeout: .seconds(30)))
        #expect(await eventually { server.count == 1 })
        #expect(server.stats(0).directReads > 0)
        #expect(server.stats(0).framesEchoed == 103)
        // Orderly close by the client: both sides hear about it, without an error.
        try await client.close()
        #expect(await eventually { client.closed && server.stats(0).closed == 1 })
        #expect(client.stats.value.closed == 1)
        #expect(client.stats.value.closeError == nil)
        #expect(server.stats(0).closeError == nil)
        shutdownClean(clientGroup)
        shutdownClean(serverGroup)
    }

    @Test("connecting to a port nobody listens on fails with ECONNREFUSED")
    func connectRefused() async throws {
        let group = EventLoopGroup(threads: 1)
        let bound = try BoundSocket()   // holds the port so that nobody else can listen on it
        let address = try SocketAddress(host: "127.0.0.1", port: bound.port)
        do {
            _ = try await TCPConnection.connect(on: group.loops[0], to: address)
            Issue.record("connect succeeded")
        } catch let error as UVError {
            #expect(error.code == UVError.connectionRefused, "\(error)")
            #expect(error.name == "ECONNREFUSED")
        }
        // The loop holds nothing afterwards: a clean close.
        shutdownClean(group)
        // Connecting through a loop that is shut down fails at once.
        await #expect(throws: EventLoopError.shutdown) { _ = try await TCPConnection.connect(on: group.loops[0], to: address) }
    }

    @Test("a closed listener refuses new connections; existing ones keep working")
    func listenerClose() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: group.loops)
        let client = try await TestClient.connect(on: group.loops[0], to: server.address)
        #expect(try await client.echo([1, 2, 3]))
        await server.listener.close()
        await server.listener.close()  // idempotent
        do {
            _ = try await TCPConnection.connect(on: group.loops[1], to: server.address)
            Issue.record("connect to a closed listener succeeded")
        } catch let error as UVError {
            #expect(error.code == UVError.connectionRefused)
        }
        #expect(try await client.echo([4, 5, 6]))
        shutdownClean(group)
    }

    @Test("stopReading holds incoming bytes back until startReading")
    func stopAndStartReading() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: [group.loops[0]])
        let client = try await TestClient.connect(on: group.loops[1], to: server.address)
        let c = client.connection
        let reading = try await c.loop.submit { c.stopReading(); return c.isReading }
        #expect(reading == false)
        try await client.send(lengthPrefixedFrame([7, 7, 7]))
        #expect(await eventually { server.count == 1 && server.stats(0).framesEchoed == 1 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(client.stats.value.received.isEmpty, "bytes were delivered while not reading")
        #expect(try await c.loop.submit { c.startReading(); return c.isReading })
        #expect(await eventually { client.stats.value.received == lengthPrefixedFrame([7, 7, 7]) })
        shutdownClean(group)
    }

    @Test("writability goes false above the high watermark and back to true at the low one")
    func watermarks() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await SinkServer.start(on: [group.loops[0]])
        let connection = try await TCPConnection.connect(on: group.loops[1], to: server.listener.localAddress)
        let stats = Locked(ClientStats())
        let chunk = pattern(64 * 1024, seed: 3)
        let total = 32 << 20
        let state = try await connection.loop.submit {
            connection.delegate = Collector(stats: stats)
            connection.highWatermark = 256 * 1024
            connection.lowWatermark = 64 * 1024
            let initially = connection.isWritable
            for _ in 0..<(total / chunk.count) { connection.write(contentsOf: chunk) }
            return (initially, connection.isWritable, connection.pendingOutboundBytes)
        }
        #expect(state.0 == true)
        #expect(state.1 == false)
        #expect(state.2 == total)
        #expect(stats.value.writability.first == false)
        // The server does not read: the connection stays unwritable.
        try await Task.sleep(for: .milliseconds(100))
        #expect(stats.value.writability == [false])
        #expect(try await connection.loop.submit { connection.pendingOutboundBytes } > 64 * 1024)
        // Once the server reads, everything arrives and the connection becomes writable again.
        try await server.startReading()
        #expect(await eventually(timeout: .seconds(30)) { server.received.value == total })
        #expect(await eventually { stats.value.writability == [false, true] })
        let after = try await connection.loop.submit { (connection.isWritable, connection.pendingOutboundBytes) }
        #expect(after.0 == true && after.1 == 0)
        shutdownClean(group)
    }

    @Test("closeAfterFlush delivers every buffered byte, then the peer sees an orderly close")
    func closeAfterFlush() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await SinkServer.start(on: [group.loops[0]])
        try await Task.sleep(for: .milliseconds(1))
        let connection = try await TCPConnection.connect(on: group.loops[1], to: server.listener.localAddress)
        let stats = Locked(ClientStats())
        let total = 8 << 20
        try await connection.loop.submit {
            connection.delegate = Collector(stats: stats)
            connection.write(contentsOf: pattern(total, seed: 5))
            connection.closeAfterFlush()
            connection.write(contentsOf: [1, 2, 3])  // ignored: the connection is closing
        }
        #expect(await eventually { server.connections.value.count == 1 })
        try await server.startReading()
        #expect(await eventually(timeout: .seconds(30)) { server.closed.value.count == 1 })
        #expect(server.received.value == total)
        #expect(server.closed.value.error == nil)
        #expect(await eventually { stats.value.closed == 1 })
        #expect(stats.value.closeError == nil)
        shutdownClean(group)
    }
}

@Suite("TCP: failures of the peer")
struct TCPPeerFailureTests {
    @Test("a client reset mid-frame: the server's delegate hears ECONNRESET")
    func clientResetMidFrame() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: [group.loops[0]])
        let client = try await TestClient.connect(on: group.loops[1], to: server.address)
        // Half of a 1000-byte frame.
        try await client.send(Array(lengthPrefixedFrame(pattern(1000, seed: 1))[..<504]))
        #expect(await eventually { server.count == 1 && server.stats(0).bytesIn == 504 })
        let c = client.connection
        try await c.loop.submit { c.reset() }
        #expect(await eventually { server.stats(0).closed == 1 }, "the server never heard of the reset")
        #expect(server.stats(0).closeError?.code == UVError.connectionReset)
        #expect(await eventually { client.stats.value.closed == 1 })
        shutdownClean(group)
    }

    @Test("a server reset: the client's delegate hears the close")
    func serverReset() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: [group.loops[0]])
        let client = try await TestClient.connect(on: group.loops[1], to: server.address)
        #expect(try await client.echo([1]))
        let s = server.connection(0)
        try await s.loop.submit { s.reset() }
        #expect(await eventually { client.stats.value.closed == 1 }, "the client never heard of the reset")
        #expect(client.stats.value.closeError?.code == UVError.connectionReset)
        #expect(await eventually { server.stats(0).closed == 1 })
        shutdownClean(group)
    }

    @Test("a server close mid-stream: the client's delegate hears an orderly close")
    func serverCloseMidStream() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: [group.loops[0]])
        let client = try await TestClient.connect(on: group.loops[1], to: server.address)
        try await client.send(Array(lengthPrefixedFrame(pattern(100, seed: 2))[..<50]))
        #expect(await eventually { server.count == 1 && server.stats(0).bytesIn == 50 })
        let s = server.connection(0)
        try await s.loop.submit { s.close() }
        #expect(await eventually { client.stats.value.closed == 1 }, "the client never heard of the close")
        #expect(client.stats.value.closeError == nil, "EOF is an orderly close")
        // The server hears of its own close in the close callback, on a later turn of its loop.
        #expect(await eventually { server.stats(0).closed == 1 })
        shutdownClean(group)
    }

    @Test("a writer whose peer resets mid-stream gets its delegate closed with an error, not a hang")
    func writerPeerReset() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await SinkServer.start(on: [group.loops[0]])
        let connection = try await TCPConnection.connect(on: group.loops[1], to: server.listener.localAddress)
        let progress = Locked(Pump.Progress())
        try await connection.loop.submit {
            let pump = Pump(framePayload: 64 * 1024, total: 1 << 30, progress: progress)
            connection.delegate = pump
            connection.startReading()
            pump.pump(connection)
        }
        try await server.startReading()
        #expect(await eventually { server.received.value > 1 << 20 })
        let s = try #require(server.connections.value.first)
        try await s.loop.submit { s.reset() }
        #expect(await eventually { progress.value.closed == 1 }, "the writer never heard of the reset")
        let code = progress.value.closeError?.code
        #expect(code == UVError.connectionReset || code == UVError.brokenPipe, "closed with \(String(describing: progress.value.closeError))")
        shutdownClean(group)
    }

    @Test("a peer whose event loop shuts down: the other side hears the close")
    func peerLoopShutdown() async throws {
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let server = try await EchoServer.start(on: serverGroup.loops)
        let client = try await TestClient.connect(on: clientGroup.loops[0], to: server.address)
        #expect(try await client.echo([9]))
        shutdownClean(serverGroup)
        #expect(server.stats(0).closed == 1)
        #expect(server.stats(0).closeError?.code == UVError.canceled)
        #expect(await eventually { client.stats.value.closed == 1 }, "the client never heard of the shutdown")
        shutdownClean(clientGroup)
    }
}

@Suite("TCP: shutdown")
struct TCPShutdownTests {
    @Test("a group with a listener and open connections (both ends on it) shuts down clean; every delegate hears the close")
    func shutdownWithOpenConnections() async throws {
        let group = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: group.loops)
        var clients: [TestClient] = []
        for i in 0..<10 {
            let client = try await TestClient.connect(on: group.loops[i % 2], to: server.address)
            #expect(try await client.echo(pattern(i * 100, seed: i)))
            clients.append(client)
        }
        // One connection with a large write still queued towards a peer that is not reading.
        let stalled = try await TCPConnection.connect(on: group.loops[0], to: server.address)
        let stalledStats = Locked(ClientStats())
        try await stalled.loop.submit {
            stalled.delegate = Collector(stats: stalledStats)
            stalled.write(contentsOf: [UInt8](repeating: 0, count: 16 << 20))
        }
        // And a pending timer.
        try await group.loops[1].submit { _ = LoopTimer(loop: group.loops[1], timeout: 60_000) { _ in } }
        #expect(await eventually { server.count == 11 })

        shutdownClean(group)

        for i in 0..<server.count {
            #expect(server.stats(i).closed == 1, "server connection \(i) never heard of the close")
        }
        for (i, c) in clients.enumerated() {
            #expect(c.stats.value.closed == 1, "client \(i) never heard of the close")
        }
        #expect(stalledStats.value.closed == 1)
        #expect(stalledStats.value.closeError?.code == UVError.canceled)
        // Closing the listener after the shutdown returns at once.
        await server.listener.close()
    }

    @Test("a connect that gets no answer times out with ETIMEDOUT; one in flight at shutdown fails with ECANCELED")
    func connectTimeoutAndShutdown() async throws {
        let group = EventLoopGroup(threads: 1)
        // A socket listening with a backlog of 0 that never accepts: once its queue is full, the kernel
        // drops further SYNs, so a connect gets no answer.
        let full = try BoundSocket()
        #expect(listen(full.fd, 0) == 0)
        let address = try SocketAddress(host: "127.0.0.1", port: full.port)
        var established: [TCPConnection] = []
        var timedOut: UVError?
        for _ in 0..<5 {
            do {
                established.append(try await TCPConnection.connect(on: group.loops[0], to: address, timeoutMilliseconds: 300))
            } catch let error as UVError {
                timedOut = error
                break
            }
        }
        #expect(!established.isEmpty, "the first connect fills the queue")
        #expect(timedOut?.code == UVError.timedOut, "\(String(describing: timedOut))")

        let result = Locked<Result<Int, UVError>?>(nil)
        try await group.loops[0].submit {
            TCPConnection.connect(on: group.loops[0], to: address, timeoutMilliseconds: 60_000) { r in
                result.withLock { $0 = r.map { _ in 1 } }
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(result.value == nil, "still connecting")
        shutdownClean(group)
        guard case .failure(let error)? = result.value else {
            Issue.record("connect completion at shutdown: \(String(describing: result.value))")
            return
        }
        #expect(error.code == UVError.canceled)
    }
}
