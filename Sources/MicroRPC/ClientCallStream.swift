public import MicroCore

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

    init(stream: ClientStream, codec: any Codec, deadline: Timestamp?) {
        self.stream = stream
        self.codec = codec
        deadlineTimer = deadline.map { d in
            Task {
                do { try await Task.sleep(until: d.instant, clock: .continuous) } catch { return }
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
    /// Opens a bidirectional stream to `endpoint`. Opening is retried on another node by the same rule as a unary
    /// call (when it certainly did not reach a handler: connect failure, NACK, draining server); once open, the
    /// stream itself is never retried.
    public func stream(
        service: String,
        endpoint: String,
        contentType: String = ContentType.raw,
        metadata: Metadata = Metadata(),
        options: CallOptions = CallOptions()
    ) async throws -> ClientCallStream {
        guard let codec = configuration.codecs.codec(for: contentType) else {
            throw RPCUsageError("no codec for content type \"\(contentType)\"")
        }
        return try await execute(service: service, endpoint: endpoint, contentType: contentType, metadata: metadata,
                                 options: options, kind: .stream, context: codec) { codec, address, head, deadline in
            await StreamAttempt.run(self.transport, codec, to: address, head: head, deadline: deadline)
        }
    }
}
