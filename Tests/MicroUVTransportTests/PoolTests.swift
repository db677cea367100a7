import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

@Suite("Connection pool")
struct PoolTests {
    @Test func growsOnlyWhenConnectionsAreFull() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionsPerAddress = 3
        clientConfig.maxStreamsPerConnection = 2
        let inFlight = Atomic<Int>(0)
        let release = Atomic<Bool>(false)
        let h = try await Harness.start(client: clientConfig) { stream in
            _ = try? await stream.receive()
            inFlight.add(1, ordering: .relaxed)
            while !release.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(2)) }
            try? await stream.respond([1])
        }
        // One call: one connection.
        release.store(true, ordering: .relaxed)
        _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        #expect(await h.client.poolStats(for: h.address)?.dials == 1)
        release.store(false, ordering: .relaxed)
        inFlight.store(0, ordering: .relaxed)
        // Eight slow calls: six fit (3 connections x 2 streams), two wait for a free slot.
        let results = try await withTimeout(20) {
            try await withThrowingTaskGroup(of: Status.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []).status }
                }
                try await eventually(10, "six calls in flight") { inFlight.load(ordering: .relaxed) == 6 }
                let stats = await h.client.poolStats(for: h.address)
                #expect(stats?.ready == 3)
                #expect(stats?.dials == 3)
                #expect(stats?.waiting == 2)
                release.store(true, ordering: .relaxed)
                var all: [Status] = []
                for try await s in group { all.append(s) }
                return all
            }
        }
        #expect(results == Array(repeating: .ok, count: 8))
        #expect(await h.client.poolStats(for: h.address)?.dials == 3, "no connection beyond the maximum")
        await h.stop()
    }

    @Test("with more connections than a pick scans, two random choices still find every free connection: no extra dial, no wait")
    func manyConnectionsEveryFreeOneIsFound() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionsPerAddress = 12
        clientConfig.maxStreamsPerConnection = 1
        let inFlight = Atomic<Int>(0)
        let release = Atomic<Bool>(false)
        let h = try await Harness.start(client: clientConfig) { stream in
            _ = try? await stream.receive()
            inFlight.add(1, ordering: .relaxed)
            while !release.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(2)) }
            try? await stream.respond([1])
        }
        for round in 0..<2 {
            release.store(false, ordering: .relaxed)
            inFlight.store(0, ordering: .relaxed)
            // Twelve slow calls at once: one connection each. In the second round every connection exists, so each
            // call must find a free one, the last one too (when the two random choices hit busy ones).
            let results = try await withTimeout(20) {
                try await withThrowingTaskGroup(of: Status.self) { group in
                    for _ in 0..<12 {
                        group.addTask { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []).status }
                    }
                    try await eventually(10, "twelve calls in flight") { inFlight.load(ordering: .relaxed) == 12 }
                    let stats = await h.client.poolStats(for: h.address)
                    #expect(stats?.ready == 12, "round \(round)")
                    #expect(stats?.waiting == 0, "round \(round)")
                    release.store(true, ordering: .relaxed)
                    var all: [Status] = []
                    for try await s in group { all.append(s) }
                    return all
                }
            }
            #expect(results == Array(repeating: .ok, count: 12))
            #expect(await h.client.poolStats(for: h.address)?.dials == 12, "round \(round): no dial beyond one per connection")
        }
        await h.stop()
    }

    @Test func waitersGiveUpAtTheirDeadlineAndAreBounded() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionsPerAddress = 1
        clientConfig.maxStreamsPerConnection = 1
        clientConfig.maxWaiters = 1
        let release = Atomic<Bool>(false)
        let h = try await Harness.start(client: clientConfig) { stream in
            _ = try? await stream.receive()
            while !release.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(2)) }
            try? await stream.respond([1])
        }
        try await withTimeout(20) {
            let first = Task { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
            try await eventually(10, "first call holds the only slot") { await h.client.poolStats(for: h.address)?.streams == 1 }
            // The second waits and gives up at its deadline (5 s: long enough that a busy machine, running the tests
            // in parallel, still sees it waiting).
            let second = Task {
                try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [],
                                         deadline: Timestamp.now.advanced(by: .seconds(5)))
            }
            try await eventually(10, "second call waits") { await h.client.poolStats(for: h.address)?.waiting == 1 }
            // A third finds the waiting line full.
            do {
                _ = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [])
                Issue.record("expected poolExhausted")
            } catch let e as TransportError {
                #expect(e.code == .poolExhausted)
            }
            do {
                _ = try await second.value
                Issue.record("expected deadlineExceeded")
            } catch let e as TransportError {
                #expect(e.code == .deadlineExceeded)
            }
            release.store(true, ordering: .relaxed)
            #expect(try await first.value.status == .ok)
        }
        await h.stop()
    }

    @Test func idleConnectionsCloseAfterIdleTimeout() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.idleTimeoutMilliseconds = 150
        clientConfig.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(client: clientConfig)
        _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        #expect(await h.client.poolStats(for: h.address)?.dials == 1)
        try await eventually(5, "idle connection closed") { await h.client.poolStats(for: h.address)?.ready == 0 }
        try await eventually(5, "server saw the close") { await h.server.connectionCount() == 0 }
        // The next call dials again.
        _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        #expect(await h.client.poolStats(for: h.address)?.dials == 2)
        await h.stop()
    }

    @Test func busyConnectionIsNotIdle() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.idleTimeoutMilliseconds = 100
        clientConfig.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(client: clientConfig) { stream in
            _ = try? await stream.receive()
            try? await Task.sleep(for: .milliseconds(400))
            try? await stream.respond([1])
        }
        // One call lasting four idle timeouts: measured on idle time, the connection must survive it.
        let r = try await withTimeout(10) { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
        #expect(r.status == .ok)
        #expect(await h.client.poolStats(for: h.address)?.dials == 1)
        await h.stop()
    }

    @Test func connectionsRetireAtTheirMaximumAge() async throws {
        var clientConfig = UVTransportConfiguration()
        clientConfig.maxConnectionAgeMilliseconds = 200
        clientConfig.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(client: clientConfig)
        let head = RequestHead(service: "s", endpoint: "e")
        _ = try await withTimeout(10) { try await h.client.unary(to: h.address, head: head, message: []) }
        #expect(await h.client.poolStats(for: h.address)?.dials == 1)
        // Calls keep the connection busy, but past its age (200 ms ± 10%) new calls go to a new connection.
        try await withTimeout(10) {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .milliseconds(600) {
                let r = try await h.client.unary(to: h.address, head: head, message: [1])
                #expect(r.status == .ok)
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let dials = await h.client.poolStats(for: h.address)?.dials ?? 0
        #expect(dials >= 2, "an old connection takes no new streams")
        #expect(dials <= 5, "retirement happens once per age, not on every call")
        try await eventually(5, "retired connections closed") { await h.client.poolStats(for: h.address)?.ready ?? 0 <= 1 }
        await h.stop()
    }

    @Test func connectFailureIsRetrySafe() async throws {
        // Bind and close a listener to get a port nobody listens on.
        let g = EventLoopGroup(threads: 1)
        let l = try await TCPListener.bind(loops: g.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { $0.close() }
        let address = l.localAddress.description
        await l.close()
        let client = UVClientTransport(group: g)
        do {
            _ = try await withTimeout(10) { try await client.unary(to: address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
            Issue.record("expected connectFailed")
        } catch let e as TransportError {
            #expect(e.code == .connectFailed)
            #expect(e.isRetrySafe)
        }
        await client.shutdown()
        #expect(g.shutdownGracefully())
    }

    @Test func deadPeerIsEvictedByPing() async throws {
        let raw = try await RawServer.start(.silent)
        let g = EventLoopGroup(threads: 1)
        var config = UVTransportConfiguration()
        config.keepaliveIntervalMilliseconds = 50
        config.pingTimeoutMilliseconds = 150
        config.housekeepingIntervalMilliseconds = 20
        let client = UVClientTransport(group: g, configuration: config)
        // The call never gets an answer; the missing PING answer ends it with an error, not a hang.
        do {
            _ = try await withTimeout(10) { try await client.unary(to: raw.address, head: RequestHead(service: "s", endpoint: "e"), message: [1]) }
            Issue.record("expected an error")
        } catch let e as TransportError {
            #expect(e.code == .connectionClosed)
            #expect(e.message.contains("PING"))
        }
        try await eventually(5, "dead connection evicted") { await client.poolStats(for: raw.address)?.ready == 0 }
        await client.shutdown()
        #expect(g.shutdownGracefully())
        #expect(raw.stop())
    }

    @Test func peerKilledMidStreamFailsTheCall() async throws {
        let raw = try await RawServer.start(.resetOnRequest)
        let g = EventLoopGroup(threads: 1)
        let client = UVClientTransport(group: g)
        do {
            _ = try await withTimeout(10) { try await client.unary(to: raw.address, head: RequestHead(service: "s", endpoint: "e"), message: [1]) }
            Issue.record("expected an error")
        } catch let e as TransportError {
            #expect(e.code == .connectionClosed)
        }
        try await eventually(5, "broken connection evicted") { await client.poolStats(for: raw.address)?.ready == 0 }
        await client.shutdown()
        #expect(g.shutdownGracefully())
        #expect(raw.stop())
    }

    @Test func truncatedResponseFailsTheCall() async throws {
        let raw = try await RawServer.start(.truncateResponse)
        let g = EventLoopGroup(threads: 1)
        let client = UVClientTransport(group: g)
        do {
            _ = try await withTimeout(10) { try await client.unary(to: raw.address, head: RequestHead(service: "s", endpoint: "e"), message: [1]) }
            Issue.record("expected an error")
        } catch let e as TransportError {
            #expect(e.code == .connectionClosed)
        }
        await client.shutdown()
        #expect(g.shutdownGracefully())
        #expect(raw.stop())
    }

    @Test func drainFinishesInFlightCallsAndRefusesNewOnes() async throws {
        let started = Atomic<Int>(0)
        let h = try await Harness.start { stream in
            _ = try? await stream.receive()
            started.add(1, ordering: .relaxed)
            try? await Task.sleep(for: .milliseconds(300))
            try? await stream.respond([9])
        }
        try await withTimeout(20) {
            let inFlight = Task { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
            try await eventually(10, "call started") { started.load(ordering: .relaxed) == 1 }
            let drained = Task { await h.server.drain(gracePeriod: .seconds(5)) }
            let r = try await inFlight.value
            #expect(r.status == .ok && r.message == [9], "the in-flight call finishes during the drain")
            await drained.value
            // The server is gone: a new call fails retry-safe, it never hangs.
            do {
                _ = try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [])
                Issue.record("expected an error after the drain")
            } catch let e as TransportError {
                #expect(e.isRetrySafe, "got \(e)")
            }
        }
        await h.stop()
    }

    @Test func drainCancelsCallsBeyondTheGracePeriod() async throws {
        let cancelled = Atomic<Bool>(false)
        let started = Atomic<Bool>(false)
        let h = try await Harness.start { stream in
            _ = try? await stream.receive()
            started.store(true, ordering: .relaxed)
            do { try await Task.sleep(for: .seconds(30)) } catch { cancelled.store(true, ordering: .relaxed) }
            try? await stream.respond([1])
        }
        try await withTimeout(20) {
            let call = Task { try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: []) }
            try await eventually(10, "call started") { started.load(ordering: .relaxed) }
            await h.server.drain(gracePeriod: .milliseconds(100))
            do {
                _ = try await call.value
                Issue.record("expected the call to fail")
            } catch let e as TransportError {
                #expect(e.code == .connectionClosed || e.code == .cancelled, "got \(e)")
            }
            try await eventually(5, "handler cancelled") { cancelled.load(ordering: .relaxed) }
        }
        await h.stop()
    }
}
