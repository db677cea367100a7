import Glibc
import MicroEventLoop
import Synchronization
import Testing

/// Tests that hold thousands of fds or tens of MiB: run one at a time.
@Suite("TCP under load", .serialized)
struct TCPLoadTests {
    @Test("2,000 connections at once to one server, each echoes its own frame", .timeLimit(.minutes(2)))
    func twoThousandConnections() async throws {
        let connections = 2000
        // Both ends live in this process: two fds per connection.
        let needed = rlim_t(2 * connections + 1000)
        let saved = fileLimit()
        if saved.rlim_cur < needed {
            try #require(saved.rlim_max >= needed, "RLIMIT_NOFILE hard limit \(saved.rlim_max) is too low")
            #expect(setFileLimit(soft: needed))
        }
        defer { if saved.rlim_cur < needed { setFileLimit(soft: saved.rlim_cur) } }
        let fdsBefore = openFDCount()

        let serverGroup = EventLoopGroup(threads: 2)
        let clientGroup = EventLoopGroup(threads: 2)
        let server = try await EchoServer.start(on: serverGroup.loops)
        let address = server.address
        let ok = Atomic<Int>(0)
        let bad = Atomic<Int>(0)
        let failures = Locked<[UVError]>([])
        for i in 0..<connections {
            let loop = clientGroup.next()
            let frame = lengthPrefixedFrame(pattern(16 + i % 200, seed: i))
            loop.execute {
                TCPConnection.connect(on: loop, to: address, timeoutMilliseconds: 60_000) { result in
                    switch result {
                    case .success(let c):
                        c.delegate = OneEcho(expected: frame) { good in
                            if good { ok.add(1, ordering: .relaxed) } else { bad.add(1, ordering: .relaxed) }
                        }
                        c.startReading()
                        c.write(contentsOf: frame)
                    case .failure(let e):
                        failures.withLock { $0.append(e) }
                        bad.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        let finished = await eventually(timeout: .seconds(90)) {
            ok.load(ordering: .relaxed) + bad.load(ordering: .relaxed) == connections
        }
        #expect(finished, "\(ok.load(ordering: .relaxed)) ok, \(bad.load(ordering: .relaxed)) failed of \(connections)")
        #expect(ok.load(ordering: .relaxed) == connections)
        #expect(failures.value.isEmpty, "\(failures.value.prefix(5))")
        #expect(server.count == connections)
        #expect(server.listener.acceptErrors == 0)
        // All of them are open at once on the server side.
        let open = try await withThrowingTaskGroup(of: Int.self) { g in
            for loop in serverGroup.loops {
                let mine = server.accepted.value.map(\.connection).filter { $0.loop === loop }
                g.addTask { try await loop.submit { mine.filter(\.isOpen).count } }
            }
            return try await g.reduce(0, +)
        }
        #expect(open == connections)

        shutdownClean(clientGroup)
        shutdownClean(serverGroup)
        #expect(server.accepted.value.allSatisfy { $0.stats.value.closed == 1 })
        await server.listener.close()
        // Every descriptor was given back.
        #expect(await eventually { openFDCount() <= fdsBefore + 2 }, "fds before \(fdsBefore), after \(openFDCount())")
    }

    @Test("a client that never reads: the server stops reading, its write queue stays bounded, the client becomes unwritable",
          .timeLimit(.minutes(2)))
    func readerThatNeverReads() async throws {
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let high = 1 << 20, low = 256 << 10
        let server = try await EchoServer.start(on: serverGroup.loops) { connection in
            connection.highWatermark = high
            connection.lowWatermark = low
        }
        let framePayload = 256 << 10
        let frameBytes = framePayload + 4
        let total = 64 << 20
        let progress = Locked(Pump.Progress())
        let connection = try await TCPConnection.connect(on: clientGroup.loops[0], to: server.address)
        try await connection.loop.submit {
            let pump = Pump(framePayload: framePayload, total: total, progress: progress)
            connection.delegate = pump
            // Never startReading(): the server's echoes pile up in the kernel, then in the server.
            pump.pump(connection)
        }
        // Wait until the client is stuck: unwritable and no progress for a while (or it sent everything).
        let stuck = await eventually(timeout: .seconds(90)) {
            let p = progress.value
            return p.sent >= total || (!p.isWritable && ContinuousClock.now - p.lastProgress > .seconds(2))
        }
        #expect(stuck)
        let p = progress.value
        #expect(p.sent < total, "the client wrote all \(total) bytes: nothing pushed back")
        #expect(!p.isWritable, "the client never became unwritable")
        #expect(p.becameUnwritable >= 1)
        #expect(p.closed == 0)

        #expect(server.count == 1)
        let s = server.stats(0)
        #expect(s.framesEchoed > 0)
        #expect(s.wentUnwritable >= 1, "the server connection never became unwritable")
        #expect(s.stoppedReading, "the server did not stop reading")
        #expect(s.maxPendingOutbound <= high + frameBytes,
                "server write queue reached \(s.maxPendingOutbound) bytes, limit \(high) + one frame \(frameBytes)")
        let sc = server.connection(0)
        let now = try await sc.loop.submit { (sc.isReading, sc.isWritable, sc.pendingOutboundBytes) }
        #expect(now.0 == false && now.1 == false)
        #expect(now.2 <= high + frameBytes)
        // Everything the server took in beyond what it echoed is at most one partial frame.
        #expect(s.bytesIn - s.framesEchoed * frameBytes < frameBytes)

        shutdownClean(clientGroup)
        shutdownClean(serverGroup)
        #expect(progress.value.closed == 1)
        #expect(server.stats(0).closed == 1)
    }
}
