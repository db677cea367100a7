public import MicroFraming
internal import MicroTransport
internal import MicroRegistry
internal import MicroSelector

/// The client's side of a bidirectional streaming call: send messages, close the sending side, receive the
/// server's messages until its end, or cancel.
///
/// ``receive()`` returns nil after the server ended the call OK, and throws ``RPCError`` when it ended with an
/// error, the deadline passed, or the connection was lost. Thread-safe; one task should receive at a time.
public final class ClientCallStream: Sendable {
    let stream: ClientStream
    let codec: any Codec
    let deadlineTimer: Task<Void, Never>?
    /// The metadata of the server's response head, once it arrived.
    public var contentType: String { stream.head.contentType }

    init(stream: ClientStream, codec: any Codec, deadline: ContinuousClock.Instant?) {
        self.stream = stream
        self.codec = codec
        deadlineTimer = deadline.map { d in
            Task {
                do { try await Task.sleep(until: d, clock: .continuous) } catch { return }
                stream.inbound.finish(throwing: TransportError(.deadlineExceeded, "the stream's deadline passed"))
                stream.outbound.cancel(reason: "deadline exceeded")
            }
        }
    }

    deinit { deadlineTimer?.cancel() }

    public func send(_ message: [UInt8]) async throws {
        do {
            try await stream.send(message)
        } catch {
            throw RPCError(error)
        }
    }

    /// Sends `value` encoded with the call's codec.
    public func send<T>(value: T) async throws { try await send(try codec.encode(value)) }

    /// Ends the sending side; the server may still send.
    public func closeSend() async throws {
        do {
            try await stream.finish()
        } catch {
            throw RPCError(error)
        }
    }

    /// The server's next message, or nil when the call ended OK.
    public func receive() async throws -> [UInt8]? {
        while true {
            let part: ClientInboundPart?
            do {
                part = try await stream.receive()
            } catch let e as TransportError {
                deadlineTimer?.cancel()
                throw RPCError(e)
            }
            switch part {
            case .head(let head):
                if let error = RPCError(status: head.status, metadata: head.metadata) {
                    deadlineTimer?.cancel()
                    throw error
                }
            case .message(let m):
                return m
            case .end(let trailers):
                deadlineTimer?.cancel()
                if let trailers, let error = RPCError(status: trailers.status, metadata: trailers.metadata) { throw error }
                return nil
            case nil:
                deadlineTimer?.cancel()
                return nil
            }
        }
    }

    public func receive<T>(as type: T.Type) async throws -> T? {
        guard let bytes = try await receive() else { return nil }
        return try codec.decode(T.self, from: bytes)
    }

    /// Cancels the call at both ends.
    public func cancel() {
        deadlineTimer?.cancel()
        stream.cancel(reason: "cancelled by the client")
    }
}

extension Client {
    /// Opens a bidirectional stream to `endpoint`. Opening is retried on another node when it certainly did not
    /// reach a handler (connect failure, draining server); the stream itself is never retried.
    public func stream(
        service: String,
        endpoint: String,
        contentType: String = ContentType.raw,
        metadata: Metadata = [:],
        options: CallOptions = CallOptions()
    ) async throws -> ClientCallStream {
        guard let codec = configuration.codecs.codec(for: contentType) else {
            throw RPCUsageError("no codec for content type \"\(contentType)\"")
        }
        let deadline = deadline(timeout: options.timeout)
        let maxRetries = min(1000, max(0, options.retries ?? configuration.retries))
        retryBudget.recordCall()
        var next: Next?
        var attempt: UInt16 = 1
        while true {
            let now = ContinuousClock.now
            if now >= deadline { throw RPCError(.deadlineExceeded, "deadline exceeded before the stream opened") }
            let address: String
            var node: Node?
            if let a = options.address {
                address = a
            } else {
                guard let selector else { throw RPCUsageError("no address given and the client has no selector") }
                do {
                    if next == nil { next = try await selector.select(service, options: options.selection) }
                    let picked = try next!.next()
                    node = picked
                    address = picked.address
                } catch {
                    throw RPCError(.unavailable, "no node of \(service): \(error)", cause: error, workNotStarted: true)
                }
            }
            let head = RequestHead(service: service, endpoint: endpoint, contentType: contentType,
                                   timeoutMicroseconds: Self.microseconds(now.duration(to: deadline)), attempt: attempt, metadata: metadata)
            do {
                let s = try await transport.openStream(to: address, head: head, firstMessage: nil, endOfInput: false, deadline: deadline)
                if let node, let selector { selector.mark(service, node: node, outcome: .success(latency: now.duration(to: .now))) }
                return ClientCallStream(stream: s, codec: codec, deadline: deadline)
            } catch {
                if let node, let selector {
                    selector.mark(service, node: node, outcome: error.code == .cancelled ? .ignored : .failure(latency: now.duration(to: .now)))
                }
                let e = RPCError(error)
                guard Int(attempt) <= maxRetries, error.isRetrySafe, retryBudget.tryRetry() else { throw e }
                try? await Task.sleep(until: min(.now + configuration.backoff.delay(forRetry: Int(attempt)), deadline), clock: .continuous)
                if Task.isCancelled { throw RPCError(.cancelled, "cancelled while waiting to retry") }
                attempt += 1
            }
        }
    }
}
