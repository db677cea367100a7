internal import MicroEventLoop
internal import MicroCore
internal import MicroFraming

/// A unary call's stream id and the size of its REQUEST frame, as ``MuxConnection/reserveUnaryStream(head:messageCount:)``
/// checked it (the send reserves that much without encoding the head's size again).
struct UnaryReservation {
    let id: UInt32
    let frameSize: Int
}

/// A unary call a client waits for: the continuation of the calling task and what arrived so far.
struct PendingUnary {
    let continuation: UnsafeContinuation<Result<UnaryResponse, TransportError>, Never>
    var head: ResponseHead?
    var message: [UInt8]?
}

/// The names decoded from request heads on one loop (see ``StringInterner``). Loop-confined.
final class NameCache {
    @exclusivity(unchecked) var interner = StringInterner(capacity: 32)
}

/// The unary fast path: a call is one REQUEST frame (head, message, end) answered by one RESPONSE frame, with no
/// stream object, queue or task of its own on either side.
extension MuxConnection {
    // MARK: client

    /// Takes the id for a unary call after checking that the connection can carry it. The caller sends it with
    /// ``sendUnary(_:head:message:deadlineAt:continuation:)`` without suspending in between, so ids go out in
    /// order.
    func reserveUnaryStream(head: RequestHead, messageCount: Int) throws(TransportError) -> UnaryReservation {
        precondition(role == .client)
        guard acceptsNewStreams else {
            throw TransportError(.notProcessed, "connection to \(peerDescription) is draining or closed")
        }
        let size = FrameEncoder.requestSize(head, messageCount: messageCount)
        guard size - FrameHeader.size <= Int(peerSettings.maxFrameSize) else {
            throw TransportError(.messageTooLarge, "request of \(size - FrameHeader.size) bytes exceeds the peer's maximum frame size of \(peerSettings.maxFrameSize)")
        }
        // A head encoded in fewer bytes than one cut name takes (65,535 less at most 3 bytes backed over to a
        // character's start) or than 65,536 metadata pairs need has nothing cut: the field by field check only
        // for the others.
        guard size - FrameHeader.size - messageCount < 65_532 || head.isEncodable else {
            throw TransportError(.invalidState, "request head too large to encode (a name, the content type or metadata is above 65,535 bytes)")
        }
        return UnaryReservation(id: state.openClientStream(unary: true), frameSize: size)
    }

    /// Sends a unary call reserved with ``reserveUnaryStream(head:messageCount:)``; `continuation` is resumed
    /// exactly once, on this loop.
    func sendUnary(
        _ reservation: UnaryReservation, head: RequestHead, message: [UInt8], deadlineAt: UInt64?,
        continuation: UnsafeContinuation<Result<UnaryResponse, TransportError>, Never>
    ) {
        let id = reservation.id
        if isClosed || id != lastStreamID {
            state.streamClosed(id)
            continuation.resume(returning: .failure(closeReason ?? TransportError(.notProcessed, "the connection to \(peerDescription) closed before the call was sent")))
            return
        }
        if let at = deadlineAt, at <= loop.nowMilliseconds {
            state.streamClosed(id)
            continuation.resume(returning: .failure(TransportError(.deadlineExceeded, "the deadline passed before the call was sent")))
            return
        }
        clientUnary[id] = PendingUnary(continuation: continuation)
        idleSince = 0
        tcp.withOutbound(reserving: reservation.frameSize) { p in
            message.withUnsafeBytes { FrameEncoder.encodeRequest(stream: id, head, message: $0, endStream: true, into: p) }
        }
        if let at = deadlineAt { addDeadline(at, id) }
    }

    /// Gives back a stream reserved with ``reserveUnaryStream(head:messageCount:)`` and never sent (its caller was
    /// cancelled first): the server never saw it.
    func abandonUnary(_ id: UInt32) {
        state.streamClosed(id)
        streamEnded()
    }

    /// Ends a unary call locally with `error` and tells the server (CANCEL). No-op when it already ended.
    func cancelUnary(_ id: UInt32, error: TransportError) {
        guard let call = clientUnary.removeValue(forKey: id) else { return }
        state.streamClosed(id)
        if !isClosed {
            let reason = error.code == .deadlineExceeded ? "deadline exceeded" : "cancelled by the caller"
            let code: ErrorCode = .cancelled
            tcp.withOutbound(reserving: FrameEncoder.cancelSize(reason: reason)) {
                FrameEncoder.encodeCancel(stream: id, code: code, reason: reason, into: $0)
            }
        }
        call.continuation.resume(returning: .failure(error))
        streamEnded()
    }

    /// A RESPONSE for a unary call (taken out of the table by the caller; the state machine checked the frame).
    func unaryResponse(_ id: UInt32, _ call: PendingUnary, _ head: ResponseHead, _ message: UnsafeRawBufferPointer?, _ endStream: Bool) -> Bool {
        if endStream {
            state.streamClosed(id)
            call.continuation.resume(returning: .success(UnaryResponse(head: head, message: message.map { Array($0) }, trailers: head)))
            streamEnded()
            return !isClosed
        }
        var waiting = call
        waiting.head = head
        waiting.message = message.map { Array($0) }
        clientUnary[id] = waiting
        return true
    }

    /// A DATA frame for a unary call whose head arrived (the state machine checked): the response's message, when
    /// there was none yet.
    func unaryData(_ id: UInt32, _ call: PendingUnary, _ message: UnsafeRawBufferPointer, _ endStream: Bool) -> Bool {
        if call.message != nil {
            // A unary response has one message: refuse the call, keep the connection.
            clientUnary[id] = call
            cancelUnary(id, error: TransportError(.protocolError, "the server sent more than one message for a unary call"))
            return !isClosed
        }
        var waiting = call
        waiting.message = Array(message)
        if endStream {
            state.streamClosed(id)
            waiting.continuation.resume(returning: .success(UnaryResponse(head: waiting.head!, message: waiting.message, trailers: nil)))
            streamEnded()
            return !isClosed
        }
        // Credit back at once: the call ends soon, and a large response must not stall.
        if !message.isEmpty {
            let n = UInt32(min(message.count, Int(Int32.max)))
            tcp.withOutbound(reserving: FrameEncoder.windowSize) { FrameEncoder.encodeWindow(stream: id, increment: n, into: $0) }
        }
        clientUnary[id] = waiting
        return true
    }

    // MARK: server

    /// A worker's handler returned: sends the reply as one RESPONSE frame with the end. Dropped when the call was
    /// cancelled or the connection closed meanwhile.
    func finishUnary(_ id: UInt32, _ reply: UnaryReply) {
        state.streamClosed(id)
        if !isClosed {
            let size = FrameEncoder.responseSize(reply.head, messageCount: reply.message?.count)
            if size - FrameHeader.size > Int(peerSettings.maxFrameSize) || !reply.head.isEncodable {
                let refusal = ResponseHead(status: .error(.resourceExhausted, "the response of \(size - FrameHeader.size) bytes (or its metadata) exceeds the peer's maximum frame size of \(peerSettings.maxFrameSize)"))
                tcp.withOutbound(reserving: FrameEncoder.responseSize(refusal, messageCount: nil)) {
                    FrameEncoder.encodeResponse(stream: id, refusal, message: nil, endStream: true, into: $0)
                }
            } else if let message = reply.message {
                let head = reply.head
                tcp.withOutbound(reserving: size) { p in
                    message.withUnsafeBytes { FrameEncoder.encodeResponse(stream: id, head, message: $0, endStream: true, into: p) }
                }
            } else {
                let head = reply.head
                tcp.withOutbound(reserving: size) { FrameEncoder.encodeResponse(stream: id, head, message: nil, endStream: true, into: $0) }
            }
        }
        streamEnded()
    }

    // MARK: both

    /// Ends unary calls with ids above `lastStream` (the peer did not process them).
    func failUnaryCalls(above lastStream: UInt32, _ error: TransportError) {
        guard !clientUnary.isEmpty else { return }
        for id in clientUnary.allKeys where id > lastStream {
            if let call = clientUnary.removeValue(forKey: id) {
                state.streamClosed(id)
                call.continuation.resume(returning: .failure(error))
                streamEnded()
            }
        }
    }

    /// The connection is gone: every unary call ends (handlers are cancelled, callers get `error`).
    func endUnaryCalls(_ error: TransportError) {
        if role == .server, state.openCount > streams.count, let workers {
            _ = workers.cancelAll(of: self)
        }
        if !clientUnary.isEmpty {
            let waiting = clientUnary
            clientUnary.removeAll()
            for call in waiting.allValues { call.continuation.resume(returning: .failure(error)) }
        }
        deadlines.removeAll()
        deadlineTimer?.cancel()
        deadlineTimer = nil
        deadlineTimerAt = .max
    }

    // MARK: deadlines

    private func addDeadline(_ at: UInt64, _ id: UInt32) {
        deadlines.insert(at: at, key: id)
        if deadlines.count > 2 * clientUnary.count + 64 {
            deadlines.compact { clientUnary.contains($0.key) }
        }
        armDeadlineTimer()
    }

    private func armDeadlineTimer() {
        guard let earliest = deadlines.earliest, earliest < deadlineTimerAt else { return }
        let now = loop.nowMilliseconds
        let wait = earliest > now ? earliest - now : 0
        deadlineTimerAt = earliest
        if let timer = deadlineTimer {
            timer.restart(timeout: wait)
        } else {
            // Unowned, not weak: a weak reference would give the connection a side table, and every retain and
            // release of it (several per call) would take the slow path. The timer is cancelled when the connection
            // ends (`endUnaryCalls`) and when the loop shuts down, so it never fires after the connection is gone.
            deadlineTimer = LoopTimer(loop: loop, timeout: wait) { [unowned self] _ in self.deadlinesDue() }
        }
    }

    private func deadlinesDue() {
        deadlineTimer = nil  // one-shot: it is closed after this callback
        deadlineTimerAt = .max
        let now = loop.nowMilliseconds
        while let due = deadlines.popDue(now: now) {
            cancelUnary(due.key, error: TransportError(.deadlineExceeded, "the call's deadline passed"))
        }
        armDeadlineTimer()
    }
}
