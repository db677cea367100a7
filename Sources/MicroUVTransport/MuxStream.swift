internal import MicroEventLoop
internal import MicroCore
internal import MicroFraming

/// One stream of a ``MuxConnection``. Loop-confined: every field is read and written on the connection's
/// loop only (the class is `@unchecked Sendable` so that outbound handles can carry it to the loop).
final class MuxStream: @unchecked Sendable {
    enum Inbound {
        case client(InboundQueue<ClientInboundPart>)
        case server(InboundQueue<ServerInboundPart>)
    }

    struct PendingSend {
        var frame: PendingFrame
        var continuation: CheckedContinuation<Void, any Error>?
    }

    enum PendingFrame {
        case data([UInt8], endStream: Bool)
        case end(ResponseHead?)
    }

    let id: UInt32
    /// Strong: outbound handles may outlive the connection's table; the cycle ends when the stream ends.
    let connection: MuxConnection
    var inbound: Inbound!
    /// Credit for our DATA frames; may go negative by the last frame (PROTOCOL.md §8).
    var sendWindow: Int
    /// Credit the peer still has for its DATA frames towards us.
    var receiveWindow: Int
    /// Bytes of messages that were not flow controlled (in REQUEST/RESPONSE) still to be taken: taking them
    /// returns no credit.
    var creditDebt = 0
    /// Sends waiting for credit or for the socket to drain, in order.
    var pending: [PendingSend] = []
    /// We ended our direction (or queued the end).
    var localEnded = false
    /// The peer ended its direction.
    var remoteEnded = false
    /// Server: the RESPONSE head went out.
    var sentHead = false
    /// Ended by CANCEL, connection loss or completion; no frame is sent for it any more.
    var closed = false
    /// Server: the handler's task, cancelled when the client cancels.
    var handlerTask: Task<Void, Never>?

    init(id: UInt32, connection: MuxConnection, sendWindow: Int, receiveWindow: Int) {
        self.id = id
        self.connection = connection
        self.sendWindow = sendWindow
        self.receiveWindow = receiveWindow
    }

    /// Ends the stream locally: the inbound side finishes with `error` (or cleanly), waiting sends fail.
    func terminate(_ error: TransportError?) {
        guard !closed else { return }
        closed = true
        switch inbound {
        case .client(let q): q.finish(throwing: error)
        case .server(let q): q.finish(throwing: error)
        case nil: break
        }
        let waiting = pending
        pending.removeAll()
        let failure = error ?? TransportError(.invalidState, "the stream has ended")
        for p in waiting { p.continuation?.resume(throwing: failure) }
        // The handler is cancelled only when the stream failed; after a normal end it may still clean up.
        if error != nil { handlerTask?.cancel() }
        handlerTask = nil
    }
}

/// The client's sending half of a stream on a ``MuxConnection``.
struct MuxClientOutbound: ClientStreamOutbound {
    let stream: MuxStream
    let loop: EventLoop

    func send(_ message: [UInt8]) async throws(TransportError) {
        try await perform(.data(message, endStream: false))
    }

    func finish() async throws(TransportError) {
        try await perform(.end(nil))
    }

    func cancel(reason: String) {
        let stream = self.stream
        if loop.inEventLoop {
            stream.connection.cancelStream(stream, reason: reason)
        } else {
            loop.execute { stream.connection.cancelStream(stream, reason: reason) }
        }
    }

    private func perform(_ frame: MuxStream.PendingFrame) async throws(TransportError) {
        try await MuxSend.perform(stream: stream, loop: loop, frame: frame)
    }
}

/// The server's sending half of a stream on a ``MuxConnection``.
struct MuxServerOutbound: ServerStreamOutbound {
    let stream: MuxStream
    let loop: EventLoop

    func send(_ part: ServerOutboundPart) async throws(TransportError) {
        switch part {
        case .head(let head):
            try await MuxSend.run(stream: stream, loop: loop) { s throws(TransportError) in
                try s.connection.sendHead(s, head, message: nil, endStream: false)
            }
        case .message(let m):
            // Without a head yet, the first message goes in the RESPONSE frame itself.
            let headFirst = try await MuxSend.run(stream: stream, loop: loop) { s throws(TransportError) -> Bool in
                if s.sentHead { return false }
                var failure: TransportError?
                m.withUnsafeBytes { b in
                    do throws(TransportError) { try s.connection.sendHead(s, ResponseHead(), message: b, endStream: false) } catch { failure = error }
                }
                if let failure { throw failure }
                return true
            }
            if !headFirst { try await MuxSend.perform(stream: stream, loop: loop, frame: .data(m, endStream: false)) }
        case .end(let trailers):
            try await MuxSend.perform(stream: stream, loop: loop, frame: .end(trailers))
        }
    }

    func cancel(reason: String) {
        let stream = self.stream
        loop.execute { stream.connection.cancelStream(stream, reason: reason) }
    }
}

/// Runs stream operations on the stream's loop: inline when the caller already is on it, otherwise with one
/// hop there and one back.
enum MuxSend {
    static func run<T: Sendable>(
        stream: MuxStream,
        loop: EventLoop,
        _ body: @escaping @Sendable (MuxStream) throws(TransportError) -> T
    ) async throws(TransportError) -> T {
        if loop.inEventLoop { return try body(stream) }
        do {
            return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
                let accepted = loop.execute {
                    do { cont.resume(returning: try body(stream)) } catch { cont.resume(throwing: error) }
                }
                if !accepted { cont.resume(throwing: TransportError(.shutdown, "the event loop is shut down")) }
            }
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError(.invalidState, "\(error)")
        }
    }

    /// Sends a DATA or END frame, waiting for credit and a writable socket when needed.
    static func perform(stream: MuxStream, loop: EventLoop, frame: MuxStream.PendingFrame) async throws(TransportError) {
        if loop.inEventLoop {
            // Fast path: on the loop with credit, no suspension at all.
            if try stream.connection.trySend(stream, frame) { return }
        }
        do {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
                let work: @Sendable () -> Void = {
                    do {
                        if try stream.connection.trySend(stream, frame) {
                            cont.resume()
                        } else {
                            stream.pending.append(MuxStream.PendingSend(frame: frame, continuation: cont))
                        }
                    } catch {
                        cont.resume(throwing: error)
                    }
                }
                if !loop.execute(work) { cont.resume(throwing: TransportError(.shutdown, "the event loop is shut down")) }
            }
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError(.invalidState, "\(error)")
        }
    }
}
