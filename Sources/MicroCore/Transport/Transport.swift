
/// The client side of a transport: opens streams to addresses. What an RPC system embeds as its transport
/// plugin. Implementations: `UVClientTransport` (libuv, pooled, multiplexed) and ``InMemoryTransport``.
public protocol ClientTransport: Sendable {
    /// Opens a stream to `address` by sending `head`, with `firstMessage` in the same frame when given;
    /// `endOfInput` ends the client's direction at once (unary and server-streaming calls).
    ///
    /// `deadline` bounds the wait for a connection or a free stream slot, not the call itself.
    func openStream(
        to address: String,
        head: RequestHead,
        firstMessage: [UInt8]?,
        endOfInput: Bool,
        deadline: Timestamp?
    ) async throws(TransportError) -> ClientStream

    /// A unary exchange: one request message, one response. `deadline` bounds the whole call: when it passes,
    /// the call is cancelled at the server and ends with `deadlineExceeded`. Cancelling the calling task cancels
    /// the call. `nonisolated(nonsending)`: it starts on the caller's executor, so a caller on the transport's
    /// loop pays no executor switch.
    nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?
    ) async throws(TransportError) -> UnaryResponse

    /// ``unary(to:head:message:deadline:)`` that `cancellation` can also cancel, from any thread, without
    /// cancelling the calling task; the call then ends with `cancelled`. The default runs the call in a task of its
    /// own that `cancellation` cancels; a transport with a cancellable call path does it without that task.
    nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?,
        cancellation: CallCancellation
    ) async throws(TransportError) -> UnaryResponse

    /// Closes every connection; open streams end with `shutdown`.
    func shutdown() async

    /// The executor on which calls to `address` cost no thread hop (the event loop of its connections), or nil.
    /// The client runs work it starts for a call in new tasks (hedged attempts) there.
    func preferredExecutor(for address: String) -> (any TaskExecutor)?

    /// Runs `action` at `deadline` on the calling thread when that thread is one of this transport's event loops
    /// (no thread hop, microsecond precision): a hedged call's delay. Nil when the caller is not on such a loop
    /// (the caller then uses another timer). The default is nil.
    func scheduleAlarm(at deadline: Timestamp, _ action: @escaping @Sendable () -> Void) -> (any TransportAlarm)?
}

/// An alarm from ``ClientTransport/scheduleAlarm(at:_:)``. ``cancel()`` from any thread: the action does not
/// run unless it was already firing.
public protocol TransportAlarm: Sendable {
    func cancel()
}

extension ClientTransport {
    public func preferredExecutor(for address: String) -> (any TaskExecutor)? { nil }

    public func scheduleAlarm(at deadline: Timestamp, _ action: @escaping @Sendable () -> Void) -> (any TransportAlarm)? { nil }

    /// A unary exchange over ``openStream(to:head:firstMessage:endOfInput:deadline:)``: what a transport
    /// without a faster path uses.
    public nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?
    ) async throws(TransportError) -> UnaryResponse {
        try await unaryOverStream(to: address, head: head, message: message, deadline: deadline)
    }

    public nonisolated(nonsending) func unary(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?,
        cancellation: CallCancellation
    ) async throws(TransportError) -> UnaryResponse {
        if cancellation.isCancelled { throw TransportError(.cancelled, "the call was cancelled") }
        let call = Task { () async throws -> UnaryResponse in
            try await unary(to: address, head: head, message: message, deadline: deadline)
        }
        if !cancellation.arm({ call.cancel() }) { call.cancel() }
        defer { cancellation.disarm() }
        let result = await withTaskCancellationHandler {
            await call.result
        } onCancel: {
            call.cancel()
        }
        switch result {
        case .success(let response): return response
        case .failure where cancellation.isCancelled: throw TransportError(.cancelled, "the call was cancelled")
        case .failure(let e as TransportError): throw e
        case .failure(let e): throw TransportError(.invalidState, "\(e)")
        }
    }

    /// A unary exchange without a deadline.
    public nonisolated(nonsending) func unary(to address: String, head: RequestHead, message: [UInt8]) async throws(TransportError) -> UnaryResponse {
        try await unary(to: address, head: head, message: message, deadline: nil)
    }

    public func unaryOverStream(
        to address: String,
        head: RequestHead,
        message: [UInt8],
        deadline: Timestamp?
    ) async throws(TransportError) -> UnaryResponse {
        if let deadline, deadline <= .now { throw TransportError(.deadlineExceeded, "the deadline passed before the call started") }
        let stream = try await openStream(to: address, head: head, firstMessage: message, endOfInput: true, deadline: deadline)
        let timer: Task<Void, Never>? = deadline.map { d in
            Task {
                do { try await Task.sleep(until: d.instant) } catch { return }
                stream.inbound.finish(throwing: TransportError(.deadlineExceeded, "the call's deadline passed"))
                stream.outbound.cancel(reason: "deadline exceeded")
            }
        }
        defer { timer?.cancel() }
        do {
            let (h, messages, trailers) = try await stream.collect()
            return UnaryResponse(head: h, message: messages.first, trailers: trailers)
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError(.invalidState, "\(error)")
        }
    }
}

/// The server side of a transport: accepts streams and hands each to a handler.
public protocol ServerTransport: Sendable {
    /// Starts accepting streams; returns once the server is listening. Each stream runs `handler` in a task of
    /// its own; requests that arrive whole may take the handler's unary path (``ServerHandler``).
    func serve(_ handler: any ServerHandler) async throws

    /// Where clients reach this server once it serves ("host:port", or the in-memory name); nil before.
    var boundAddress: String? { get }

    /// Graceful stop: accept no new streams (peers are told to go elsewhere), let open streams finish for up
    /// to `gracePeriod`, cancel what is left, then close everything.
    func drain(gracePeriod: Duration) async
}

extension ServerTransport {
    /// Starts serving every request as a stream, with `handler`.
    public func serve(_ handler: @escaping @Sendable (ServerStream) async -> Void) async throws {
        try await serve(StreamHandler(handler))
    }
}
