import CoreMetrics
internal import MicroEventLoop
internal import MicroCore
internal import MicroFraming
internal import MicroTLS

/// The connections to one address, on one loop. Loop-confined; `@exclusivity(unchecked)` on the hot fields: one thread, no re-entrant mutation, so the runtime's access
/// tracking (a thread-local lookup per access) would only cost.
///
/// A stream goes to an open connection with room and few streams, picked from the set of connections that may
/// have room (`room`): with up to 8 there, the one with the fewest streams; with more, the less loaded of two
/// taken at random ("power of two choices"). A connection enters the set when it becomes ready and when one of
/// its streams ends; one found full, draining or retired when picked leaves it. So a pick costs O(1) however
/// many connections there are (each leaving is paid for by the entry before it). A new connection is dialled
/// only when every open (or opening) one is full. Callers that find no room wait, in order, up to
/// `maxWaiters` of them, each until its own deadline. Broken connections leave the pool at once; a connection
/// that receives DRAIN takes no new streams and finishes the ones it has. Idle connections close after the idle
/// timeout; connections older than the maximum age (jittered) retire the same way.
final class ConnectionPool: MuxConnectionOwner, @unchecked Sendable {
    typealias Completion = (Result<MuxConnection, TransportError>) -> Void

    final class Waiter {
        let completion: Completion
        var timer: LoopTimer?
        var done = false
        init(completion: @escaping Completion) { self.completion = completion }
    }

    let address: SocketAddress
    /// Strong: read on every call, and an unowned reference's read is a compare-and-swap loop on its count.
    let loop: EventLoop
    let config: UVTransportConfiguration
    /// Connections that finished the SETTINGS exchange and are not closed.
    @exclusivity(unchecked) private(set) var ready: [MuxConnection] = [] { didSet { connectionsMeter.set(ready.count) } }
    /// Connections dialled or handshaking.
    private(set) var opening = 0
    private var handshaking: [MuxConnection] = []
    @exclusivity(unchecked) private var waiters: [Waiter] = []
    @exclusivity(unchecked) private var waiterHead = 0
    private var housekeeping: LoopTimer?
    private var isShutdown = false
    /// Dials made since the pool was created (for tests and metrics).
    private(set) var dialCount = 0
    /// The ready connections that may have room: every one that has is here (some here may have none).
    @exclusivity(unchecked) private var room: [MuxConnection] = []
    /// For the two random choices among many connections.
    @exclusivity(unchecked) private var random = FastRandom()
    /// Above this many connections with room, a pick takes two random choices instead of comparing them all.
    static let scanLimit = 8

    /// The address as callers name it ("host:port"), for the transport's lock-free cache of its last pool.
    let name: String

    init(address: SocketAddress, name: String = "", loop: EventLoop, config: UVTransportConfiguration) {
        self.address = address
        self.name = name
        self.loop = loop
        self.config = config
        let label = name.isEmpty ? "\(address)" : name
        connectionsMeter = Meter(label: "micro_pool_connections", dimensions: [("address", label)])
        waitersMeter = Meter(label: "micro_pool_waiters", dimensions: [("address", label)])
    }

    /// Callers waiting now (timed-out and cancelled ones are not counted, though they may still sit in `waiters`).
    private(set) var waitingCount = 0 {
        didSet {
            waitersMeter.set(waitingCount)
            demand.callersWaiting = waitingCount > 0
        }
    }
    /// Whether callers wait, for the connections (they tell the pool of a stream's end only then, or when full).
    let demand = PoolDemand()
    /// `micro_pool_connections{address}` and `micro_pool_waiters{address}` (swift-metrics; no-ops without a backend).
    private let connectionsMeter: Meter
    private let waitersMeter: Meter

    /// Finds a connection with room for one more stream, dialling or waiting as needed. `completion` runs on
    /// the loop exactly once.
    @discardableResult
    func acquire(deadline: Timestamp?, _ completion: @escaping Completion) -> Waiter? {
        if isShutdown {
            completion(.failure(TransportError(.shutdown, "the client transport is shut down")))
            return nil
        }
        if let c = bestConnection() {
            completion(.success(c))
            return nil
        }
        guard waitingCount < config.maxWaiters else {
            completion(.failure(TransportError(.poolExhausted, "\(waitingCount) callers already wait for a stream to \(address)")))
            return nil
        }
        let waiter = Waiter(completion: completion)
        if let deadline {
            let left = Timestamp.now.nanoseconds(to: deadline)
            if left <= 0 {
                completion(.failure(TransportError(.deadlineExceeded, "deadline passed while waiting for a connection to \(address)")))
                return nil
            }
            let ms = UInt64(max(1, left / 1_000_000))
            waiter.timer = LoopTimer(loop: loop, timeout: ms) { [weak self, weak waiter] _ in
                guard let waiter, !waiter.done else { return }
                waiter.done = true
                self?.waitingCount -= 1
                waiter.timer = nil
                waiter.completion(.failure(TransportError(.deadlineExceeded, "no stream to \(self?.address.description ?? "?") became free before the deadline")))
                self?.compactWaiters()
            }
        }
        waiters.append(waiter)
        waitingCount += 1
        if ready.count + opening < config.maxConnectionsPerAddress && needsAnotherConnection() {
            dial()
        }
        return waiter.done ? nil : waiter
    }

    /// Gives up waiting (the caller's task was cancelled).
    func cancel(_ waiter: Waiter, error: TransportError) {
        guard !waiter.done else { return }
        waiter.done = true
        waitingCount -= 1
        waiter.timer?.cancel()
        waiter.timer = nil
        waiter.completion(.failure(error))
        compactWaiters()
    }

    /// Whether the connections being opened cannot absorb the waiters.
    private func needsAnotherConnection() -> Bool {
        let perConnection = config.maxStreamsPerConnection
        return waitingCount > opening * perConnection
    }

    /// A connection with room for one more stream now, when no caller waits ahead: the unary fast path's way
    /// in (no closure, no waiter). Nil sends the caller through ``acquire(deadline:_:)``.
    func readyConnection() -> MuxConnection? {
        guard !isShutdown, waitingCount == 0 else { return nil }
        return bestConnection()
    }

    private func bestConnection() -> MuxConnection? {
        let now = loop.nowMilliseconds
        while room.count > Self.scanLimit {
            let i = random.below(room.count)
            guard let a = usable(room[i], now: now) else {
                leaveRoom(at: i)
                continue
            }
            var j = random.below(room.count - 1)
            if j >= i { j += 1 }
            guard let b = usable(room[j], now: now) else {
                leaveRoom(at: j)
                return a
            }
            return b.activeStreams < a.activeStreams ? b : a
        }
        var best: MuxConnection?
        var i = 0
        while i < room.count {
            guard let c = usable(room[i], now: now) else {
                leaveRoom(at: i)
                continue
            }
            if best == nil || c.activeStreams < best!.activeStreams { best = c }
            i += 1
        }
        return best
    }

    private func enterRoom(_ c: MuxConnection) {
        guard c.poolRoomIndex < 0 else { return }
        c.poolRoomIndex = room.count
        room.append(c)
    }

    private func leaveRoom(at i: Int) {
        let c = room[i]
        c.poolRoomIndex = -1
        let last = room.removeLast()
        if i < room.count {
            room[i] = last
            last.poolRoomIndex = i
        }
    }

    /// `c` when it takes a new stream now.
    @inline(__always)
    private func usable(_ c: MuxConnection, now: UInt64) -> MuxConnection? {
        c.acceptsNewStreams && !retired(c, now: now) && c.activeStreams < c.streamCapacity(limit: config.maxStreamsPerConnection) ? c : nil
    }

    private func retired(_ c: MuxConnection, now: UInt64) -> Bool {
        now >= c.retireAt
    }

    private func dial() {
        opening += 1
        dialCount += 1
        startHousekeeping()
        TCPConnection.connect(on: loop, to: address, timeoutMilliseconds: config.dialTimeoutMilliseconds) { [self] result in
            switch result {
            case .success(let tcp):
                if isShutdown {
                    opening -= 1
                    tcp.close()
                    return
                }
                if let tls = config.tls {
                    do {
                        try TLSTransform.attach(to: tcp, context: tls, serverName: address.host)
                    } catch {
                        opening -= 1
                        tcp.close()
                        failWaitersIfStuck(TransportError(.connectFailed, "TLS setup for \(address) failed: \(error)"))
                        return
                    }
                }
                let c = MuxConnection(role: .client, tcp: tcp, settings: config.settings)
                c.logger = config.logger
                c.owner = self
                c.poolDemand = demand
                handshaking.append(c)
                c.start()
            case .failure(let error):
                opening -= 1
                failWaitersIfStuck(TransportError(.connectFailed, "\(error)"))
            }
        }
    }

    /// After a failed dial: waiters that no open or opening connection can serve fail now (retry-safe).
    private func failWaitersIfStuck(_ error: TransportError) {
        // No re-dial here: a dead address would be dialled in a loop. The next caller dials again.
        serveWaiters(dialIfNeeded: false)
        if opening == 0 && bestConnection() == nil { failAllWaiters(error) }
    }

    private func failAllWaiters(_ error: TransportError) {
        let pending = waiters[waiterHead...]
        waiters.removeAll()
        waiterHead = 0
        waitingCount = 0
        for w in pending where !w.done {
            w.done = true
            w.timer?.cancel()
            w.completion(.failure(error))
        }
    }

    private func serveWaiters(dialIfNeeded: Bool = true) {
        while waiterHead < waiters.count {
            let w = waiters[waiterHead]
            if w.done {
                waiterHead += 1
                continue
            }
            guard let c = bestConnection() else { break }
            waiterHead += 1
            w.done = true
            waitingCount -= 1
            w.timer?.cancel()
            w.timer = nil
            w.completion(.success(c))
        }
        compactWaiters()
        if dialIfNeeded && waitingCount > 0 && ready.count + opening < config.maxConnectionsPerAddress && needsAnotherConnection() {
            dial()
        }
    }

    private func compactWaiters() {
        if waiterHead == waiters.count {
            waiters.removeAll(keepingCapacity: true)
            waiterHead = 0
        } else if waiterHead > 64 && waiterHead * 2 > waiters.count {
            waiters.removeFirst(waiterHead)
            waiterHead = 0
        }
    }

    // MARK: MuxConnectionOwner

    func muxConnectionReady(_ connection: MuxConnection) {
        guard let i = handshaking.firstIndex(where: { $0 === connection }) else { return }
        handshaking.remove(at: i)
        opening -= 1
        ready.append(connection)
        enterRoom(connection)
        if config.maxConnectionAgeMilliseconds > 0 {
            let base = config.maxConnectionAgeMilliseconds
            let jitter = UInt64.random(in: 0...(base / 5))
            connection.retireAt = loop.nowMilliseconds + base - base / 10 + jitter
        }
        serveWaiters()
    }

    func muxConnectionStreamClosed(_ connection: MuxConnection) {
        if connection.poolRoomIndex < 0 && connection.acceptsNewStreams { enterRoom(connection) }
        if waitingCount > 0 { serveWaiters() }
    }

    func muxConnectionDraining(_ connection: MuxConnection) {
        // It stays in `ready` until it closes, but `acceptsNewStreams` is false now.
        if waitingCount > 0 { serveWaiters() }
    }

    func muxConnectionClosed(_ connection: MuxConnection, error: TransportError?) {
        if connection.poolRoomIndex >= 0 { leaveRoom(at: connection.poolRoomIndex) }
        if let i = ready.firstIndex(where: { $0 === connection }) {
            ready.remove(at: i)
        } else if let i = handshaking.firstIndex(where: { $0 === connection }) {
            handshaking.remove(at: i)
            opening -= 1
            failWaitersIfStuck(TransportError(.connectFailed, "connection to \(address) closed during the handshake: \(error?.message ?? "closed")"))
            return
        }
        if waitingCount > 0 { serveWaiters() }
    }

    // MARK: housekeeping

    private func startHousekeeping() {
        guard housekeeping == nil else { return }
        let interval = max(10, config.housekeepingIntervalMilliseconds)
        housekeeping = LoopTimer(loop: loop, timeout: interval, repeatEvery: interval) { [weak self] _ in
            self?.tick()
        }
        housekeeping?.unref()
    }

    private func tick() {
        let now = loop.nowMilliseconds
        for c in ready + handshaking {
            guard c.tick(now: now, keepaliveInterval: config.keepaliveIntervalMilliseconds,
                         pingTimeout: config.pingTimeoutMilliseconds, settingsTimeout: config.settingsTimeoutMilliseconds,
                       frameTimeout: config.frameTimeoutMilliseconds) else { continue }
            if c.activeStreams == 0 {
                let idleFor = c.idleSince > 0 ? now - c.idleSince : 0
                if config.idleTimeoutMilliseconds > 0 && idleFor >= config.idleTimeoutMilliseconds {
                    c.close(TransportError(.connectionClosed, "idle timeout"))
                } else if retired(c, now: now) {
                    c.close(TransportError(.connectionClosed, "maximum connection age reached"))
                }
            }
        }
    }

    /// Closes every connection; waiting callers and open streams fail with `shutdown`.
    func shutdown() {
        guard !isShutdown else { return }
        isShutdown = true
        housekeeping?.cancel()
        housekeeping = nil
        let error = TransportError(.shutdown, "the client transport is shut down")
        failAllWaiters(error)
        for c in ready + handshaking { c.close(error) }
    }

    /// Snapshot for tests and metrics.
    var stats: PoolStats {
        PoolStats(ready: ready.count, opening: opening, waiting: waitingCount,
                  streams: ready.reduce(0) { $0 + $1.activeStreams }, dials: dialCount)
    }
}

/// Counters of one address's pool.
public struct PoolStats: Sendable, Equatable {
    /// Connections ready for streams (including draining ones not yet closed).
    public var ready: Int
    /// Connections being dialled or handshaking.
    public var opening: Int
    /// Callers waiting for a stream slot.
    public var waiting: Int
    /// Streams open on the ready connections.
    public var streams: Int
    /// Dials since the pool was created.
    public var dials: Int
}
