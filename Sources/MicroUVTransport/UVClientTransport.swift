public import MicroEventLoop
public import MicroCore
internal import MicroFraming
import Synchronization

/// The client side of the libuv transport: a pool of multiplexed connections per address.
///
/// Each address's pool lives on one loop of the group (chosen round robin when the address is first used); all
/// of its connections and streams are confined to that loop, so nothing on the per-frame path takes a lock.
/// Callers running on that loop (e.g. tasks with it as executor preference) never change threads.
///
/// Addresses are "host:port" with a numeric host (or "localhost").
public final class UVClientTransport: ClientTransport {
    public let group: EventLoopGroup
    public let configuration: UVTransportConfiguration
    private struct Pools: ~Copyable {
        /// Never shrinks: a pool lives as long as the transport (``lastPool`` relies on it).
        var byAddress: [String: ConnectionPool] = [:]
    }
    private let pools = Mutex(Pools())
    /// The pool used last, unretained (0: none): callers mostly repeat an address, and comparing its name costs
    /// less than taking the lock and hashing. Valid while the transport lives, since pools are never removed.
    private let lastPool = Atomic<UInt>(0)
    private let isShutdown = Atomic<Bool>(false)

    public init(group: EventLoopGroup, configuration: UVTransportConfiguration = UVTransportConfiguration()) {
        self.group = group
        self.configuration = configuration
    }

    private func pool(for address: String) throws(TransportError) -> ConnectionPool {
        let bits = lastPool.load(ordering: .acquiring)
        if bits != 0, let raw = UnsafeRawPointer(bitPattern: bits) {
            let last = Unmanaged<ConnectionPool>.fromOpaque(raw).takeUnretainedValue()
            if last.name == address { return last }
        }
        if let found = pools.withLock({ $0.byAddress[address] }) {
            remember(found)
            return found
        }
        let parsed: SocketAddress
        do { parsed = try SocketAddress(address) } catch {
            throw TransportError(.connectFailed, "bad address \"\(address)\": \(error)")
        }
        let created = pools.withLock { pools in
            if let p = pools.byAddress[address] { return p }
            let p = ConnectionPool(address: parsed, name: address, loop: group.next(), config: configuration)
            pools.byAddress[address] = p
            return p
        }
        remember(created)
        return created
    }

    /// The pool of `address`, unretained: pools live as long as the transport, so a call may use it without
    /// retaining it (a retain and a release per call saved).
    @inline(__always)
    private func unretainedPool(for address: String) throws(TransportError) -> Unmanaged<ConnectionPool> {
        let bits = lastPool.load(ordering: .acquiring)
        if bits != 0, let raw = UnsafeRawPointer(bitPattern: bits) {
            let last = Unmanaged<ConnectionPool>.fromOpaque(raw)
            if last._withUnsafeGuaranteedRef({ $0.name == address }) { return last }
        }
        return Unmanaged.passUnretained(try pool(for: address))
    }

    /// The pool's loop and, when the caller runs on it, a connection with room now: the unary fast path's way in.
    @inline(__always)
    private static func fastPath(_ pool: Unmanaged<ConnectionPool>) -> (EventLoop, MuxConnection?) {
        pool._withUnsafeGuaranteedRef { pool in
            let loop = pool.loop
            return (loop, loop.inEventLoop ? pool.readyConnection() : nil)
        }
    }

    private func remember(_ pool: ConnectionPool) {
        lastPool.store(UInt(bitPattern: Unmanaged.passUnretained(pool).toOpaque()), ordering: .releasing)
    }

    /// The loop that carries streams to `address`.
    public func loop(for address: String) throws(TransportError) -> EventLoop { try pool(for: address).loop }

    public func preferredExecutor(for address: String) -> (any TaskExecutor)? { try? loop(for: address) }

    /// On one of the group's loops: an alarm of that loop (`EventLoop.scheduleAlarm`); elsewhere nil.
    public func scheduleAlarm(at deadline: Timestamp, _ action: @escaping @Sendable () -> Void) -> (any TransportAlarm)? {
        guard let loop = group.currentLoop else { return nil }
        return UVAlarm(alarm: loop.scheduleAlarm(atBoottimeNanoseconds: deadline.nanoseconds, action))
    }

    public func openStream(
        to address: String,
        head: RequestHead,
        firstMessage: [UInt8]?,
        endOfInput: Bool,
        deadline: Timestamp?
    ) async throws(TransportError) -> ClientStream {
        if isShutdown.load(ordering: .relaxed) { throw TransportError(.shutdown, "the client transport is shut down") }
        let pool = try pool(for: address)
        let pending = PendingAcquire()
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (cont: CheckedContinuation<ClientStream, any Error>) in
                    let work: @Sendable () -> Void = {
                        if pending.cancelled {
                            cont.resume(throwing: TransportError(.cancelled, "the caller's task was cancelled"))
                            return
                        }
                        pending.waiter = pool.acquire(deadline: deadline) { result in
                            pending.waiter = nil
                            switch result {
                            case .success(let connection):
                                do {
                                    cont.resume(returning: try connection.openStream(head: head, firstMessage: firstMessage, endOfInput: endOfInput))
                                } catch {
                                    cont.resume(throwing: error)
                                }
                            case .failure(let error):
                                cont.resume(throwing: error)
                            }
                        }
                    }
                    if !pool.loop.execute(work) { cont.resume(throwing: TransportError(.shutdown, "the event loop is shut down")) }
                }
            } onCancel: {
                pool.loop.execute {
                    pending.cancelled = true
                    if let w = pending.waiter { pool.cancel(w, error: TransportError(.cancelled, "the caller's task was cancelled")) }
                }
            }
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError(.invalidState, "\(error)")
        }
    }

    /// A unary call. When the caller runs on the loop that carries `address` (a task with that loop as its
    /// executor preference), calls that address as the last call did, and a connection has room, the call takes
    /// no lock, makes no thread hop and allocates only the response message.
    public nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?
    ) async throws(TransportError) -> UnaryResponse {
        if isShutdown.load(ordering: .relaxed) { throw TransportError(.shutdown, "the client transport is shut down") }
        let pool = try unretainedPool(for: address)
        let (loop, ready) = Self.fastPath(pool)
        if let connection = ready {
            var deadlineAt: UInt64?
            if let deadline { deadlineAt = Self.loopTime(loop, plus: Self.milliseconds(until: deadline)) }
            let reservation = try connection.reserveUnaryStream(head: head, messageCount: message.count)
            let id = reservation.id
            // The variant that inherits the caller's executor: `withTaskCancellationHandler` hops to its `isolation`
            // on entry and on return, two executor checks per call that each take the task's status-record lock
            // under an executor preference (docs/RPC.md, "A hidden cost"). Same handler semantics otherwise.
            let result = await _unsafeInheritExecutor_withTaskCancellationHandler {
                await withUnsafeContinuation { (c: UnsafeContinuation<Result<UnaryResponse, TransportError>, Never>) in
                    if Task.isCancelled {
                        connection.abandonUnary(id)
                        c.resume(returning: .failure(TransportError(.cancelled, "the caller's task was cancelled")))
                    } else {
                        connection.sendUnary(reservation, head: head, message: message, deadlineAt: deadlineAt, continuation: c)
                    }
                }
            } onCancel: {
                loop.execute { connection.cancelUnary(id, error: TransportError(.cancelled, "the caller's task was cancelled")) }
            }
            return try result.get()
        }
        return try await unaryAcquiring(pool: pool.takeUnretainedValue(), head: head, message: message, deadline: deadline)
    }

    /// ``unary(to:head:message:deadline:)`` that `cancellation` can cancel too (a hedged call's first attempt, run
    /// on the caller's task). The same two ways as the plain call; the fast one is a copy of it, so that the plain
    /// call keeps its single async level.
    public nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?,
        cancellation: CallCancellation
    ) async throws(TransportError) -> UnaryResponse {
        if isShutdown.load(ordering: .relaxed) { throw TransportError(.shutdown, "the client transport is shut down") }
        let pool = try unretainedPool(for: address)
        let (loop, ready) = Self.fastPath(pool)
        if let connection = ready {
            var deadlineAt: UInt64?
            if let deadline { deadlineAt = Self.loopTime(loop, plus: Self.milliseconds(until: deadline)) }
            let reservation = try connection.reserveUnaryStream(head: head, messageCount: message.count)
            let id = reservation.id
            let cancel: @Sendable () -> Void = {
                loop.execute { connection.cancelUnary(id, error: TransportError(.cancelled, "the call was cancelled")) }
            }
            let result = await _unsafeInheritExecutor_withTaskCancellationHandler {
                await withUnsafeContinuation { (c: UnsafeContinuation<Result<UnaryResponse, TransportError>, Never>) in
                    if Task.isCancelled || !cancellation.arm(cancel) {
                        connection.abandonUnary(id)
                        c.resume(returning: .failure(TransportError(.cancelled, "the call was cancelled")))
                    } else {
                        connection.sendUnary(reservation, head: head, message: message, deadlineAt: deadlineAt, continuation: c)
                    }
                }
            } onCancel: {
                cancel()
            }
            cancellation.disarm()
            return try result.get()
        }
        defer { cancellation.disarm() }
        return try await unaryAcquiring(pool: pool.takeUnretainedValue(), head: head, message: message, deadline: deadline,
                                        cancellation: cancellation)
    }

    /// The unary call's way through the pool's queue: from another thread, or when no connection has room yet.
    private nonisolated(nonsending) func unaryAcquiring(
        pool: ConnectionPool, head: RequestHead, message: [UInt8], deadline: Timestamp?, cancellation: CallCancellation? = nil
    ) async throws(TransportError) -> UnaryResponse {
        let loop = pool.loop
        let handle = PendingUnaryHandle()
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Result<UnaryResponse, TransportError>, Never>) in
                // Cancelled already: the cancel runs on the loop before the work below, which then ends at once.
                if let cancellation, !cancellation.arm({ Self.cancelAcquiring(handle, pool: pool) }) {
                    Self.cancelAcquiring(handle, pool: pool)
                }
                let work: @Sendable () -> Void = {
                    if handle.cancelled {
                        c.resume(returning: .failure(TransportError(.cancelled, "the caller's task was cancelled")))
                        return
                    }
                    handle.waiter = pool.acquire(deadline: deadline) { acquired in
                        handle.waiter = nil
                        switch acquired {
                        case .success(let connection):
                            if handle.cancelled {
                                c.resume(returning: .failure(TransportError(.cancelled, "the caller's task was cancelled")))
                                return
                            }
                            do throws(TransportError) {
                                let reservation = try connection.reserveUnaryStream(head: head, messageCount: message.count)
                                let deadlineAt = deadline.map { Self.loopTime(loop, plus: Self.milliseconds(until: $0)) }
                                handle.call = (connection, reservation.id)
                                connection.sendUnary(reservation, head: head, message: message, deadlineAt: deadlineAt, continuation: c)
                            } catch {
                                c.resume(returning: .failure(error))
                            }
                        case .failure(let error):
                            c.resume(returning: .failure(error))
                        }
                    }
                }
                if !loop.execute(work) { c.resume(returning: .failure(TransportError(.shutdown, "the event loop is shut down"))) }
            }
        } onCancel: {
            Self.cancelAcquiring(handle, pool: pool)
        }
        return try result.get()
    }

    /// Cancels a call of ``unaryAcquiring``, on its pool's loop: out of the pool's queue, or on the wire.
    private static func cancelAcquiring(_ handle: PendingUnaryHandle, pool: ConnectionPool) {
        pool.loop.execute {
            handle.cancelled = true
            let error = TransportError(.cancelled, "the call was cancelled")
            if let w = handle.waiter { pool.cancel(w, error: error) }
            if let (connection, id) = handle.call { connection.cancelUnary(id, error: error) }
        }
    }

    /// Milliseconds from now until `deadline`, rounded up (0 when it passed), at most about 3,000 years.
    static func milliseconds(until deadline: Timestamp) -> UInt64 {
        let left = Timestamp.now.nanoseconds(to: deadline)
        if left <= 0 { return 0 }
        return UInt64(left / 1_000_000) + (left % 1_000_000 == 0 ? 0 : 1)
    }

    /// The loop time `ms` from now, saturating.
    static func loopTime(_ loop: EventLoop, plus ms: UInt64) -> UInt64 {
        let (sum, overflow) = loop.nowMilliseconds.addingReportingOverflow(ms)
        return overflow ? .max : sum
    }

    /// Counters of the pool for `address` (nil if it was never used).
    public func poolStats(for address: String) async -> PoolStats? {
        guard let p = pools.withLock({ $0.byAddress[address] }) else { return nil }
        return try? await p.loop.submit { p.stats }
    }

    public func shutdown() async {
        isShutdown.store(true, ordering: .relaxed)
        let all = pools.withLock { Array($0.byAddress.values) }
        for p in all { _ = try? await p.loop.submit { p.shutdown() } }
    }
}

/// A unary call on its way through the pool, so that cancelling its task can find it. Loop-confined.
private final class PendingUnaryHandle: @unchecked Sendable {
    var waiter: ConnectionPool.Waiter?
    var call: (MuxConnection, UInt32)?
    var cancelled = false
}

/// A caller waiting in a pool, so that cancelling its task can take it out. Loop-confined (the pool's loop).
private final class PendingAcquire: @unchecked Sendable {
    var waiter: ConnectionPool.Waiter?
    var cancelled = false
}

/// A loop alarm as a ``TransportAlarm`` (one reference: fits an existential's inline buffer).
struct UVAlarm: TransportAlarm {
    let alarm: LoopAlarm
    func cancel() { alarm.cancel() }
}
