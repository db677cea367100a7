public import MicroCore
import Synchronization

/// An in-memory ``ServerTransport`` bound to a name on an ``InMemoryNetwork``. Same stream semantics as the
/// libuv transport (flow control, cancellation, drain), without sockets: for tests of the layers above.
public final class InMemoryServer: ServerTransport {
    struct State: ~Copyable {
        var handler: (any ServerHandler)?
        var draining = false
        var inFlight: [UInt64: InMemoryStreamShared] = [:]
        var nextID: UInt64 = 0
    }

    public let address: String
    public let network: InMemoryNetwork
    /// Per-stream credit, in message bytes, for each direction.
    public let initialWindow: Int
    private let state = Mutex(State())

    public init(network: InMemoryNetwork, address: String, initialWindow: Int = 1 << 20) {
        self.network = network
        self.address = address
        self.initialWindow = initialWindow
    }

    public func serve(_ handler: any ServerHandler) async throws {
        try network.register(self, at: address)
        state.withLock { $0.handler = handler }
    }

    public func drain(gracePeriod: Duration) async {
        // New streams get `notProcessed` while draining; the address is freed at the end.
        state.withLock { $0.draining = true }
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline && inFlightCount > 0 {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let left = state.withLock { s in
            defer { s.inFlight.removeAll() }
            return Array(s.inFlight.values)
        }
        for stream in left { stream.cancel(reason: "server stopped after its grace period", fromClient: false) }
        network.unregister(address)
    }

    public var boundAddress: String? { address }

    /// Streams being handled now.
    public var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    func accept(_ head: RequestHead, firstMessage: [UInt8]?, endOfInput: Bool) throws(TransportError) -> ClientStream {
        let accepted: (UInt64, any ServerHandler)? = state.withLock { s in
            guard !s.draining, let h = s.handler else { return nil }
            s.nextID += 1
            return (s.nextID, h)
        }
        guard let (id, handler) = accepted else {
            throw TransportError(.notProcessed, "server \(address) is draining")
        }
        let shared = InMemoryStreamShared(window: initialWindow)
        state.withLock { $0.inFlight[id] = shared }
        if let firstMessage { shared.serverInbound.yield(.message(firstMessage)) }
        if endOfInput {
            shared.serverInbound.yield(.end)
            shared.markClientFinished()
        }
        let stream = ServerStream(head: head, inbound: shared.serverInbound,
                                  outbound: InMemoryServerOutbound(shared: shared), peer: "in-memory")
        // A request that arrived whole takes the handler's unary path, as on the libuv transport.
        let unary: (any UnaryHandler)? = endOfInput && firstMessage != nil ? handler.unaryHandler(for: head) : nil
        let receivedAt = Timestamp.now
        // The server enforces the call's deadline, as the libuv transport does (a task per call here: this
        // transport is for tests and single processes).
        let watch: Task<Void, Never>? = head.timeoutMicroseconds == 0 ? nil : Task {
            let budget = head.timeoutMicroseconds >= UInt64(Int64.max / 1000) ? Int64.max : Int64(head.timeoutMicroseconds) * 1000
            do { try await Task.sleep(until: receivedAt.advanced(byNanoseconds: budget).instant) } catch { return }
            await shared.expire()
        }
        let task = Task {
            if let unary {
                await unary.serveAsStream(stream, receivedAt: receivedAt)
            } else {
                await handler.handleStream(stream)
            }
            watch?.cancel()
            await shared.handlerReturned()
            self.finished(id)
        }
        shared.setHandlerTask(task)
        return ClientStream(head: head, inbound: shared.clientInbound, outbound: InMemoryClientOutbound(shared: shared))
    }

    private func finished(_ id: UInt64) {
        _ = state.withLock { $0.inFlight.removeValue(forKey: id) }
    }
}
