public import MicroEventLoop
public import MicroFraming
public import MicroTransport
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
    private let pools = Mutex<[String: ConnectionPool]>([:])
    private let isShutdown = Atomic<Bool>(false)

    public init(group: EventLoopGroup, configuration: UVTransportConfiguration = UVTransportConfiguration()) {
        self.group = group
        self.configuration = configuration
    }

    private func pool(for address: String) throws(TransportError) -> ConnectionPool {
        if let p = pools.withLock({ $0[address] }) { return p }
        let parsed: SocketAddress
        do { parsed = try SocketAddress(address) } catch {
            throw TransportError(.connectFailed, "bad address \"\(address)\": \(error)")
        }
        return pools.withLock { pools in
            if let p = pools[address] { return p }
            let p = ConnectionPool(address: parsed, loop: group.next(), config: configuration)
            pools[address] = p
            return p
        }
    }

    /// The loop that carries streams to `address`.
    public func loop(for address: String) throws(TransportError) -> EventLoop { try pool(for: address).loop }

    public func openStream(
        to address: String,
        head: RequestHead,
        firstMessage: [UInt8]?,
        endOfInput: Bool,
        deadline: ContinuousClock.Instant?
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

    /// Counters of the pool for `address` (nil if it was never used).
    public func poolStats(for address: String) async -> PoolStats? {
        guard let p = pools.withLock({ $0[address] }) else { return nil }
        return try? await p.loop.submit { p.stats }
    }

    public func shutdown() async {
        isShutdown.store(true, ordering: .relaxed)
        let all = pools.withLock { Array($0.values) }
        for p in all { _ = try? await p.loop.submit { p.shutdown() } }
    }
}

/// A caller waiting in a pool, so that cancelling its task can take it out. Loop-confined (the pool's loop).
private final class PendingAcquire: @unchecked Sendable {
    var waiter: ConnectionPool.Waiter?
    var cancelled = false
}
