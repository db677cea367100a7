internal import MicroCore
import Synchronization

/// The state both halves of one in-memory stream share.
final class InMemoryStreamShared: Sendable {
    struct State: ~Copyable {
        var clientFinished = false
        var serverSentHead = false
        var serverEnded = false
        var cancelled: TransportError?
        /// The deadline passed (the handler is cancelled as soon as it is known).
        var expired = false
        var handler: Task<Void, Never>?
    }
    let state = Mutex(State())
    let clientToServer: CreditGate
    let serverToClient: CreditGate
    let clientInbound: InboundQueue<ClientInboundPart>
    let serverInbound: InboundQueue<ServerInboundPart>

    init(window: Int) {
        let c2s = CreditGate(window: window)
        let s2c = CreditGate(window: window)
        clientToServer = c2s
        serverToClient = s2c
        let threshold = max(1, window / 2)
        let cancelClient = CallbackSlot()
        let cancelServer = CallbackSlot()
        clientInbound = InboundQueue(
            measure: { if case .message(let m) = $0 { m.count } else { 0 } },
            creditThreshold: threshold,
            onCredit: { s2c.grant($0) },
            onCancel: { cancelClient.fire() })
        serverInbound = InboundQueue(
            measure: { if case .message(let m) = $0 { m.count } else { 0 } },
            creditThreshold: threshold,
            onCredit: { c2s.grant($0) },
            onCancel: { cancelServer.fire() })
        cancelClient.set { [weak self] in self?.cancel(reason: "the client's task was cancelled", fromClient: true) }
        cancelServer.set { [weak self] in self?.cancel(reason: "the handler's task was cancelled", fromClient: false) }
    }

    func setHandlerTask(_ task: Task<Void, Never>) {
        let cancelled = state.withLock { s in
            s.handler = task
            return s.cancelled != nil || s.expired
        }
        if cancelled { task.cancel() }
    }

    func markClientFinished() { state.withLock { $0.clientFinished = true } }

    /// Cancels the stream at both ends; `fromClient` says who asked.
    func cancel(reason: String, fromClient: Bool) {
        let error = TransportError(.cancelled, reason)
        let handler: Task<Void, Never>?? = state.withLock { s in
            if s.cancelled != nil || (s.serverEnded && s.clientFinished) { return .none }
            s.cancelled = error
            return .some(s.handler)
        }
        guard case .some(let task) = handler else { return }
        // The queues first, so that a waiting receive() reports why (cancelled by whom), then the task.
        clientToServer.fail(error)
        serverToClient.fail(error)
        serverInbound.finish(throwing: error)
        clientInbound.finish(throwing: error)
        task?.cancel()
    }

    /// The call's deadline passed while its handler ran: the client gets DEADLINE_EXCEEDED now, the handler is
    /// cancelled, and what it sends afterwards is refused.
    func expire() async {
        let open = state.withLock { s in s.cancelled == nil && !s.serverEnded }
        guard open else { return }
        let outbound = InMemoryServerOutbound(shared: self)
        try? await outbound.send(.end(ResponseHead(status: .error(.deadlineExceeded, "the call's deadline passed; the handler was cancelled"))))
        serverInbound.finish(throwing: TransportError(.deadlineExceeded, "the call's deadline passed"))
        state.withLock { s in
            s.expired = true
            return s.handler
        }?.cancel()
    }

    /// The handler returned: end the server's direction if it did not.
    func handlerReturned() async {
        let open = state.withLock { s in s.cancelled == nil && !s.serverEnded }
        if open {
            let outbound = InMemoryServerOutbound(shared: self)
            try? await outbound.send(.end(ResponseHead(status: .error(.internalError, "handler returned without ending the stream"))))
        }
        // Client messages nobody will read are dropped.
        serverInbound.finish(throwing: TransportError(.cancelled, "handler returned"))
    }
}

struct InMemoryClientOutbound: ClientStreamOutbound {
    let shared: InMemoryStreamShared

    func send(_ message: [UInt8]) async throws(TransportError) {
        try check()
        try await shared.clientToServer.acquire(message.count)
        try check()
        shared.serverInbound.yield(.message(message))
    }

    func finish() async throws(TransportError) {
        try check()
        shared.markClientFinished()
        shared.serverInbound.yield(.end)
    }

    func cancel(reason: String) { shared.cancel(reason: reason, fromClient: true) }

    private func check() throws(TransportError) {
        try shared.state.withLock { (s: inout InMemoryStreamShared.State) throws(TransportError) in
            if let c = s.cancelled { throw c }
            if s.clientFinished { throw TransportError(.invalidState, "the client already finished sending") }
            if s.serverEnded { throw TransportError(.invalidState, "the stream has ended: the server ended the call") }
        }
    }
}

struct InMemoryServerOutbound: ServerStreamOutbound {
    let shared: InMemoryStreamShared

    func send(_ part: ServerOutboundPart) async throws(TransportError) {
        let needHead: Bool = try shared.state.withLock { (s: inout InMemoryStreamShared.State) throws(TransportError) -> Bool in
            if let c = s.cancelled { throw c }
            if s.serverEnded { throw TransportError(.invalidState, "the server already ended the stream") }
            if case .head = part, s.serverSentHead { throw TransportError(.invalidState, "head already sent") }
            let need = !s.serverSentHead
            s.serverSentHead = true
            if case .end = part { s.serverEnded = true }
            return need
        }
        switch part {
        case .head(let h):
            shared.clientInbound.yield(.head(h))
        case .message(let m):
            if needHead { shared.clientInbound.yield(.head(ResponseHead())) }
            try await shared.serverToClient.acquire(m.count)
            shared.clientInbound.yield(.message(m))
        case .end(let t):
            if needHead { shared.clientInbound.yield(.head(t)) }
            shared.clientInbound.yield(.end(t))
            shared.clientInbound.finish()
            // Nobody reads the client's direction any more: waiting sends end now.
            shared.clientToServer.fail(TransportError(.invalidState, "the stream has ended: the server ended the call"))
        }
    }

    func cancel(reason: String) { shared.cancel(reason: reason, fromClient: false) }
}
