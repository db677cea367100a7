internal import Logging
internal import MicroEventLoop
internal import MicroCore
internal import MicroFraming

/// Who owns a connection and hears about its capacity and its end. Called on the connection's loop.
protocol MuxConnectionOwner: AnyObject {
    /// A stream ended, so the connection can take another. On a server connection, only once it drains.
    func muxConnectionStreamClosed(_ connection: MuxConnection)
    /// The peer's SETTINGS arrived (client: the connection is ready for streams).
    func muxConnectionReady(_ connection: MuxConnection)
    /// The peer sent DRAIN: no new streams on this connection.
    func muxConnectionDraining(_ connection: MuxConnection)
    /// The connection is closed; every stream on it has ended.
    func muxConnectionClosed(_ connection: MuxConnection, error: TransportError?)
}

/// One connection of the multiplexed protocol (docs/PROTOCOL.md), client or server side.
///
/// Loop-confined: all state lives on the TCP connection's loop. Frames are decoded in place from the loop's
/// read buffer; frames written while handling a read burst leave in one write at its end; other writes leave
/// once per loop turn. The hot fields are `@exclusivity(unchecked)`: one thread, no re-entrant mutation, so the
/// runtime's access tracking (a thread-local lookup per access) would only cost.
final class MuxConnection: TCPConnectionDelegate, @unchecked Sendable {
    enum Role { case client, server }

    let role: Role
    let tcp: TCPConnection
    unowned let loop: EventLoop
    weak var owner: (any MuxConnectionOwner)?
    let localSettings: Settings
    /// The peer's limits: the protocol's defaults until its SETTINGS arrive.
    @exclusivity(unchecked) private(set) var peerSettings = Settings()
    /// The protocol state: which streams are open, and what each frame received means. The I/O below performs
    /// its verdicts.
    @exclusivity(unchecked) var state: MuxStateMachine
    var peerSettingsReceived: Bool { state.settingsReceived }
    /// Server: what serves new streams, opened once per server (see ``ServerHandlerRef``).
    let handler: ServerHandlerRef?
    /// Server: the loop's workers for unary calls (the server's, shared by its connections on this loop).
    @exclusivity(unchecked) var workers: UnaryWorkerPool?
    /// Client: unary calls waiting for their response, by stream id.
    @exclusivity(unchecked) var clientUnary = StreamTable<PendingUnary>()
    /// Client: deadlines of unary calls; one timer serves the earliest.
    @exclusivity(unchecked) var deadlines = DeadlineHeap<UInt32>()
    var deadlineTimer: LoopTimer?
    var deadlineTimerAt: UInt64 = .max
    /// Names seen in request heads, shared by the loop's connections.
    private let names: NameCache
    /// When the current read burst began (taken at its first request): the arrival time of its requests, one
    /// clock read per burst instead of one per request.
    @exclusivity(unchecked) private var burstStartedAt: Timestamp?
    /// Pool: loop time (ms) at which this connection retires (maximum age, jittered).
    var retireAt: UInt64 = .max
    /// Pool: where this connection sits in the pool's set of connections that may have room (-1: not in it).
    var poolRoomIndex = -1
    /// Pool: whether callers wait for a stream (the pool's flag, shared by its connections; nil: not in a pool).
    var poolDemand: PoolDemand?

    @exclusivity(unchecked) private var accumulator: FrameAccumulator
    /// Server: preface bytes still expected.
    private var prefaceRemaining: Int
    @exclusivity(unchecked) private(set) var streams: [UInt32: MuxStream] = [:]
    /// Client: the last id handed out. Server: the highest id seen.
    var lastStreamID: UInt32 { state.lastStreamID }
    var isDraining: Bool { state.isDraining }
    /// The socket is closed or closing after a connection error: nothing more is read or sent.
    private(set) var isClosed = false
    /// A drained connection's close is under way (``closeDrained()``).
    private var closingDrained = false
    var closeReason: TransportError?
    /// Loop time (ms) of the last complete frame received (liveness counts frames, not bytes: §8.7), the
    /// connection's creation and the last time it had no stream.
    private(set) var lastReadAt: UInt64
    /// Loop time (ms) at which the incomplete frame now buffered began (0: none): it must complete within the
    /// frame timeout.
    private var partialSince: UInt64 = 0
    /// Server: the budget of buffered inbound bytes shared by the server's connections, and what this connection
    /// holds of it (the reservation of its incomplete frame).
    var inboundBudget: InboundBudget?
    private var inboundCharged = 0
    /// Loop time (ms) at which ``fail(_:_:)`` began a close that waits for the output to flush (0: none): a peer
    /// that never reads would keep it open, so housekeeping forces the close after the ping timeout.
    private var failedAt: UInt64 = 0
    /// Server: the client address this connection counts against in the connection limits.
    var admittedAddress: String?
    let createdAt: UInt64
    @exclusivity(unchecked) var idleSince: UInt64
    private var pingSentAt: UInt64?
    private var pingCounter: UInt64 = 0
    /// The last measured round trip of a PING, in milliseconds.
    private(set) var lastRoundTripMilliseconds: UInt64?
    /// Streams waiting for the socket to become writable.
    @exclusivity(unchecked) private var blocked: [MuxStream] = []
    let peerDescription: String
    /// Server over TLS: the subject of the client's verified certificate, taken once when the handshake ends.
    @exclusivity(unchecked) private var peerCertificateSubject: String?
    /// Connection-level events (TLS refusals, protocol errors).
    var logger: Logger?

    init(role: Role, tcp: TCPConnection, settings: Settings, handler: ServerHandlerRef? = nil) {
        self.role = role
        self.handler = handler
        self.tcp = tcp
        self.loop = tcp.loop
        self.localSettings = settings
        accumulator = FrameAccumulator(headerSize: FrameHeader.size, maxPayload: Int(settings.maxFrameSize))
        state = MuxStateMachine(role: role == .client ? .client : .server, maxConcurrentStreams: Int(settings.maxConcurrentStreams))
        prefaceRemaining = role == .server ? ConnectionPreface.bytes.count : 0
        let now = tcp.loop.nowMilliseconds
        lastReadAt = now
        createdAt = now
        idleSince = now
        peerDescription = tcp.remoteAddress?.description ?? "unknown"
        names = tcp.loop.loopLocal(NameCache.self) { NameCache() }
    }

    /// Starts the connection: the client sends its preface, both send SETTINGS, reading starts.
    func start() {
        tcp.delegate = self
        if role == .client {
            tcp.write(contentsOf: ConnectionPreface.bytes)
        }
        let settings = localSettings
        tcp.withOutbound(reserving: FrameEncoder.settingsSize(settings)) { FrameEncoder.encodeSettings(settings, into: $0) }
        tcp.startReading()
    }

    /// Streams open now, unary calls included.
    var activeStreams: Int { state.openCount }

    /// How many streams this connection may carry at once: our own limit and the peer's.
    func streamCapacity(limit: Int) -> Int { min(limit, Int(peerSettings.maxConcurrentStreams)) }

    /// Whether new streams may be opened on this connection.
    var acceptsNewStreams: Bool { !isClosed && state.acceptsNewStreams }

    // MARK: client: opening streams

    /// Opens a client stream: one REQUEST frame, with the first message and the end of input when given.
    func openStream(head: RequestHead, firstMessage: [UInt8]?, endOfInput: Bool) throws(TransportError) -> ClientStream {
        precondition(role == .client)
        guard acceptsNewStreams else {
            throw TransportError(.notProcessed, "connection to \(peerDescription) is draining or closed")
        }
        let size = FrameEncoder.requestSize(head, messageCount: firstMessage?.count)
        guard size - FrameHeader.size <= Int(peerSettings.maxFrameSize) else {
            throw TransportError(.messageTooLarge, "request of \(size - FrameHeader.size) bytes exceeds the peer's maximum frame size of \(peerSettings.maxFrameSize)")
        }
        guard head.isEncodable else {
            throw TransportError(.invalidState, "request head too large to encode (a name, the content type or metadata is above 65,535 bytes)")
        }
        let id = state.openClientStream(unary: false)
        let stream = MuxStream(id: id, connection: self, sendWindow: Int(peerSettings.initialWindow),
                               receiveWindow: Int(localSettings.initialWindow))
        let loop = self.loop
        let inbound = InboundQueue<ClientInboundPart>(
            measure: { if case .message(let m) = $0 { m.count } else { 0 } },
            creditThreshold: Int(localSettings.initialWindow / 2),
            onCredit: { n in MuxConnection.onLoop(loop) { stream.connection.grantCredit(stream, n) } },
            onCancel: { MuxConnection.onLoop(loop) { stream.connection.cancelStream(stream, reason: "the caller's task was cancelled") } })
        stream.inbound = .client(inbound)
        stream.localEnded = endOfInput
        streams[id] = stream
        idleSince = 0
        tcp.withOutbound(reserving: size) { p in
            if let firstMessage {
                return firstMessage.withUnsafeBytes { b in
                    FrameEncoder.encodeRequest(stream: id, head, message: b, endStream: endOfInput, into: p)
                }
            }
            return FrameEncoder.encodeRequest(stream: id, head, message: nil, endStream: endOfInput, into: p)
        }
        return ClientStream(head: head, inbound: inbound, outbound: MuxClientOutbound(stream: stream, loop: loop))
    }

    @inline(__always)
    static func onLoop(_ loop: EventLoop, _ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop { body() } else { loop.execute(body) }
    }

    // MARK: sending on streams (loop)

    /// Sends a DATA or END frame now if credit and the socket allow; returns false when it must wait.
    func trySend(_ stream: MuxStream, _ frame: MuxStream.PendingFrame) throws(TransportError) -> Bool {
        if stream.closed { throw closeReason ?? TransportError(.invalidState, "the stream has ended") }
        if stream.localEnded && stream.pending.isEmpty {
            throw TransportError(.invalidState, "the stream's sending side is already finished")
        }
        switch frame {
        case .data(let m, _):
            guard m.count <= Int(peerSettings.maxFrameSize) else {
                throw TransportError(.messageTooLarge, "message of \(m.count) bytes exceeds the peer's maximum frame size of \(peerSettings.maxFrameSize)")
            }
        case .end(let head):
            if let head, !head.isEncodable { throw TransportError(.invalidState, "metadata too large to encode") }
        }
        if !stream.pending.isEmpty { return false }
        if !tcp.isWritable {
            if !blocked.contains(where: { $0 === stream }) { blocked.append(stream) }
            return false
        }
        if case .data = frame, stream.sendWindow <= 0 { return false }
        write(stream, frame)
        return true
    }

    private func write(_ stream: MuxStream, _ frame: MuxStream.PendingFrame) {
        let id = stream.id
        switch frame {
        case .data(let m, let end):
            stream.sendWindow -= m.count
            tcp.withOutbound(reserving: FrameEncoder.dataSize(messageCount: m.count)) { p in
                m.withUnsafeBytes { FrameEncoder.encodeData(stream: id, message: $0, endStream: end, into: p) }
            }
            if end { localEnd(stream) }
        case .end(let head):
            if role == .server && !stream.sentHead {
                // Trailers only: one RESPONSE frame with the end.
                let h = head ?? ResponseHead()
                stream.sentHead = true
                tcp.withOutbound(reserving: FrameEncoder.responseSize(h, messageCount: nil)) { p in
                    FrameEncoder.encodeResponse(stream: id, h, message: nil, endStream: true, into: p)
                }
            } else {
                let h = role == .server ? (head ?? ResponseHead()) : nil
                tcp.withOutbound(reserving: FrameEncoder.endSize(h)) { FrameEncoder.encodeEnd(stream: id, h, into: $0) }
            }
            localEnd(stream)
        }
    }

    /// Server: sends the RESPONSE head, with the first message and the end when given.
    func sendHead(_ stream: MuxStream, _ head: ResponseHead, message: UnsafeRawBufferPointer?, endStream: Bool) throws(TransportError) {
        if stream.closed { throw closeReason ?? TransportError(.invalidState, "the stream has ended") }
        guard !stream.sentHead, !stream.localEnded else { throw TransportError(.invalidState, "the response head was already sent") }
        let size = FrameEncoder.responseSize(head, messageCount: message?.count)
        guard size - FrameHeader.size <= Int(peerSettings.maxFrameSize) else {
            throw TransportError(.messageTooLarge, "response of \(size - FrameHeader.size) bytes exceeds the peer's maximum frame size of \(peerSettings.maxFrameSize)")
        }
        guard head.isEncodable else { throw TransportError(.invalidState, "metadata too large to encode") }
        stream.sentHead = true
        let id = stream.id
        tcp.withOutbound(reserving: size) { p in
            FrameEncoder.encodeResponse(stream: id, head, message: message, endStream: endStream, into: p)
        }
        if endStream { localEnd(stream) }
    }

    private func localEnd(_ stream: MuxStream) {
        stream.localEnded = true
        // A server's stream is over once it ended its direction; a client's once the server ended its own.
        if role == .server || stream.remoteEnded { complete(stream) }
    }

    /// Sends what waits on `stream` while credit and the socket allow.
    private func pump(_ stream: MuxStream) {
        while !stream.pending.isEmpty && !stream.closed {
            guard tcp.isWritable else {
                if !blocked.contains(where: { $0 === stream }) { blocked.append(stream) }
                return
            }
            let next = stream.pending[0]
            if case .data = next.frame, stream.sendWindow <= 0 { return }
            stream.pending.removeFirst()
            write(stream, next.frame)
            next.continuation?.resume()
        }
    }

    func grantCredit(_ stream: MuxStream, _ taken: Int) {
        let owed = min(taken, stream.creditDebt)
        stream.creditDebt -= owed
        let bytes = taken - owed
        guard !stream.closed, !isClosed, bytes > 0 else { return }
        stream.receiveWindow += bytes
        let id = stream.id
        tcp.withOutbound(reserving: FrameEncoder.windowSize) {
            FrameEncoder.encodeWindow(stream: id, increment: UInt32(min(bytes, Int(Int32.max))), into: $0)
        }
    }

    /// Cancels a stream locally and tells the peer.
    func cancelStream(_ stream: MuxStream, reason: String) {
        guard !stream.closed, !isClosed else { return }
        let id = stream.id
        let reason = String(reason.utf8.prefix(1024)) ?? "cancelled"
        tcp.withOutbound(reserving: FrameEncoder.cancelSize(reason: reason)) {
            FrameEncoder.encodeCancel(stream: id, code: .cancelled, reason: reason, into: $0)
        }
        remove(stream, error: TransportError(.cancelled, reason))
    }

    /// The stream finished normally at both ends.
    private func complete(_ stream: MuxStream) {
        remove(stream, error: nil)
    }

    private func remove(_ stream: MuxStream, error: TransportError?) {
        state.streamClosed(stream.id)
        guard streams.removeValue(forKey: stream.id) != nil else {
            stream.terminate(error)
            return
        }
        if error == nil, case .server(let q) = stream.inbound {
            // The server answered; client messages nobody reads any more are dropped.
            q.finish(throwing: TransportError(.cancelled, "the server ended the stream"))
        }
        stream.terminate(error)
        streamEnded()
    }

    /// Bookkeeping after any stream (or unary call) ended.
    func streamEnded() {
        if activeStreams == 0 {
            idleSince = loop.nowMilliseconds
            if isDraining { closeDrained() }
        }
        // The owner acts on a stream's end only when this connection was full (out of the pool's room) or callers
        // wait, and a server's only while draining (every connection drains with it): no weak load per call
        // otherwise (a weak load takes the owner's side table, a strong retain and release more).
        if role == .client {
            if poolRoomIndex < 0 || poolDemand?.callersWaiting != false { owner?.muxConnectionStreamClosed(self) }
        } else if isDraining {
            owner?.muxConnectionStreamClosed(self)
        }
    }

    // MARK: reading

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        // After a connection error nothing more is processed: the peer was told which streams were not.
        guard !isClosed else { return }
        var input = bytes
        if prefaceRemaining > 0 {
            let expected = ConnectionPreface.bytes
            let offset = expected.count - prefaceRemaining
            let n = min(prefaceRemaining, input.count)
            for i in 0..<n where input[i] != expected[offset + i] {
                fail(.badPreface, "the connection did not start with the protocol preface")
                return
            }
            prefaceRemaining -= n
            input = UnsafeRawBufferPointer(rebasing: input[n...])
            if input.isEmpty { return }
        }
        let now = loop.nowMilliseconds
        burstStartedAt = nil
        do {
            try accumulator.feed(input) { frame in
                self.lastReadAt = now
                return self.handle(frame)
            }
        } catch {
            fail(error.code, error.reason)
            return
        }
        if accumulator.reservedByteCount != inboundCharged { accountInbound(now: now) }
    }

    /// Follows the reservation of the incomplete frame: when it began, and its charge to the budgets.
    private func accountInbound(now: UInt64) {
        guard !isClosed else { return }
        let reserved = accumulator.reservedByteCount
        if reserved == 0 { partialSince = 0 } else if inboundCharged == 0 { partialSince = now }
        let delta = reserved - inboundCharged
        if let budget = inboundBudget {
            if reserved > budget.perConnection {
                fail(.resourceLimit, "an incomplete frame needs \(reserved) bytes, above the limit of \(budget.perConnection) per connection")
                return
            }
            if !budget.charge(delta) {
                fail(.resourceLimit, "the server's budget of \(budget.limit) bytes for incomplete frames is spent")
                return
            }
        }
        inboundCharged = reserved
    }

    func connectionReadBuffer(_ connection: TCPConnection) -> UnsafeMutableRawBufferPointer? {
        prefaceRemaining > 0 ? nil : accumulator.directReadBuffer()
    }

    func connectionDidReadDirect(_ connection: TCPConnection, count: Int) {
        guard !isClosed else { return }
        let now = loop.nowMilliseconds
        burstStartedAt = nil
        accumulator.commitDirectRead(count) { frame in
            self.lastReadAt = now
            return self.handle(frame)
        }
        if accumulator.reservedByteCount != inboundCharged { accountInbound(now: now) }
    }

    func connectionWritabilityDidChange(_ connection: TCPConnection, isWritable: Bool) {
        if isWritable {
            if role == .server { tcp.startReading() }
            let waiting = blocked
            blocked.removeAll()
            for s in waiting { pump(s) }
        } else if role == .server {
            // Backpressure: a client that does not read its responses is not read from either.
            tcp.stopReading()
        }
    }

    func connectionTransformDidBecomeReady(_ connection: TCPConnection) {
        if role == .server, let tls = connection.transform as? TLSTransform { peerCertificateSubject = tls.verifiedPeerSubject }
    }

    func connectionTransformDidFail(_ connection: TCPConnection, error: any Error) {
        // Before the peer's SETTINGS nothing was processed: a failed handshake is a failed connect (retry-safe).
        let code: TransportError.Code = peerSettingsReceived ? .connectionClosed : .connectFailed
        closeReason = TransportError(code, "TLS with \(peerDescription) failed: \(error)")
        logger?.notice("TLS failed", metadata: ["peer": "\(peerDescription)", "role": "\(role)", "error": "\(error)"])
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        let reason = closeReason ?? TransportError(.connectionClosed, error.map { "connection to \(peerDescription) lost: \($0)" } ?? "connection to \(peerDescription) closed")
        isClosed = true
        closeReason = reason
        releaseInbound()
        let open = Array(streams.values)
        streams.removeAll()
        for s in open { s.terminate(reason) }
        endUnaryCalls(reason)
        state.close()
        blocked.removeAll()
        owner?.muxConnectionClosed(self, error: reason)
    }

    /// Handles one complete frame; returns false to stop reading (the connection is failing). The state machine
    /// judges the frame; this performs its verdict.
    private func handle(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let frame: Frame
        do {
            guard let decoded = try Frame.decode(bytes, interner: &names.interner) else { return true }  // unknown type: ignored
            frame = decoded
        } catch {
            fail(error.code, error.reason)
            return false
        }
        if !state.settingsReceived {
            let isSettings: Bool
            if case .settings(false, _) = frame { isSettings = true } else { isSettings = false }
            if case .error(let code, let reason) = state.checkFirstFrame(isSettings: isSettings) { return failed(code, reason) }
        }
        // Consumed: the request head moves into the call rather than being copied.
        switch consume frame {
        case .settings(let ack, let payload):
            if ack { return true }
            do {
                peerSettings = try Settings().applying(payload)
            } catch {
                fail(error.code, error.reason)
                return false
            }
            tcp.withOutbound(reserving: FrameEncoder.settingsAckSize) { FrameEncoder.encodeSettingsAck(into: $0) }
            if state.receiveSettings() { owner?.muxConnectionReady(self) }
        case .request(let id, let head, let message, let endStream):
            return receiveRequest(id, head, message, endStream)
        case .response(let id, let head, let message, let endStream):
            switch state.receiveResponse(id, endStream: endStream) {
            case .accept(unary: true):
                guard let call = clientUnary.removeValue(forKey: id) else { return true }
                return unaryResponse(id, call, head, message, endStream)
            case .accept(unary: false):
                guard let stream = streams[id], case .client(let q) = stream.inbound else { return true }
                stream.sentHead = true
                q.yield(.head(head))
                if let message {
                    stream.creditDebt += message.count  // not flow controlled: taking it returns no credit
                    q.yield(.message(Array(message)))
                }
                if endStream {
                    q.yield(.end(head))
                    remoteEnd(stream)
                }
            case .ignore, .refuse: return true
            case .error(let code, let reason): return failed(code, reason)
            }
        case .data(let id, let message, let endStream):
            switch state.receiveData(id, endStream: endStream) {
            case .accept(unary: true):
                guard let call = clientUnary.removeValue(forKey: id) else { return true }
                return unaryData(id, call, message, endStream)
            case .accept(unary: false):
                guard let stream = streams[id] else { return true }
                if stream.receiveWindow <= 0 {
                    fail(.flowControlError, "DATA on stream \(id) without credit")
                    return false
                }
                stream.receiveWindow -= message.count
                switch stream.inbound {
                case .client(let q):
                    q.yield(.message(Array(message)))
                    if endStream { q.yield(.end(nil)) }
                case .server(let q):
                    q.yield(.message(Array(message)))
                    if endStream { q.yield(.end) }
                case nil: break
                }
                if endStream { remoteEnd(stream) }
            case .ignore, .refuse: return true
            case .error(let code, let reason): return failed(code, reason)
            }
        case .end(let id, let head):
            switch state.receiveEnd(id, hasHead: head != nil) {
            case .accept(unary: true):
                guard let call = clientUnary.removeValue(forKey: id), let head else { return true }
                state.streamClosed(id)
                call.continuation.resume(returning: .success(UnaryResponse(head: call.head ?? head, message: call.message, trailers: head)))
                streamEnded()
            case .accept(unary: false):
                guard let stream = streams[id] else { return true }
                switch stream.inbound {
                case .client(let q):
                    if !stream.sentHead, let head {
                        stream.sentHead = true
                        q.yield(.head(head))
                    }
                    q.yield(.end(head))
                case .server(let q):
                    q.yield(.end)
                case nil: break
                }
                remoteEnd(stream)
            case .ignore, .refuse: return true
            case .error(let code, let reason): return failed(code, reason)
            }
        case .cancel(let id, let code, let reason):
            switch state.receiveCancel(id) {
            case .accept(unary: true):
                if role == .server {
                    _ = workers?.cancel(self, id)
                } else if let call = clientUnary.removeValue(forKey: id) {
                    call.continuation.resume(returning: .failure(TransportError(.cancelled, "cancelled by the peer (\(code)): \(reason)")))
                }
                streamEnded()
            case .accept(unary: false):
                if let stream = streams[id] { remove(stream, error: TransportError(.cancelled, "cancelled by the peer (\(code)): \(reason)")) }
            case .ignore, .refuse: return true
            case .error(let code, let reason): return failed(code, reason)
            }
        case .window(let id, let increment):
            switch state.receiveWindow(id, increment: increment) {
            case .accept(unary: true), .ignore, .refuse:
                return true  // a unary call's credit is the state's (its response is not flow controlled)
            case .accept(unary: false):
                guard let stream = streams[id] else { return true }
                stream.sendWindow += Int(increment)
                if stream.sendWindow > Int(Int32.max) {
                    fail(.flowControlError, "WINDOW overflow on stream \(id)")
                    return false
                }
                pump(stream)
            case .error(let code, let reason): return failed(code, reason)
            }
        case .ping(let ack, let opaque):
            if ack {
                if let sent = pingSentAt, opaque == pingCounter {
                    lastRoundTripMilliseconds = loop.nowMilliseconds - sent
                    pingSentAt = nil
                }
            } else {
                tcp.withOutbound(reserving: FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: true, opaque: opaque, into: $0) }
            }
        case .drain(let last, let code, let reason):
            receiveDrain(lastStream: last, code: code, reason: reason)
            return code == .noError
        }
        return !isClosed
    }

    /// A connection error found by the state machine: DRAIN with it, close; stop reading.
    private func failed(_ code: ErrorCode, _ reason: String) -> Bool {
        fail(code, reason)
        return false
    }

    func protocolViolation(_ reason: String) -> Bool {
        fail(.protocolError, reason)
        return false
    }

    private func remoteEnd(_ stream: MuxStream) {
        stream.remoteEnded = true
        if role == .client { complete(stream) }
    }

    // MARK: server: accepting streams

    private func receiveRequest(_ id: UInt32, _ head: consuming RequestHead, _ message: UnsafeRawBufferPointer?, _ endStream: Bool) -> Bool {
        switch state.receiveRequest(id) {
        case .accept:
            break
        case .ignore:
            return true  // sent after our DRAIN: not processed, the client retries elsewhere
        case .refuse(let status):
            let refusal = ResponseHead(status: status)
            tcp.withOutbound(reserving: FrameEncoder.responseSize(refusal, messageCount: nil)) {
                FrameEncoder.encodeResponse(stream: id, refusal, message: nil, endStream: true, into: $0)
            }
            return true
        case .error(let code, let reason):
            return failed(code, reason)
        }
        guard let handler else { return true }
        if endStream, let message, let workers, let unary = handler.unaryHandler(for: head) {
            // Unary fast path: no stream object, no queue, no new task.
            let arrived: Timestamp
            if let t = burstStartedAt { arrived = t } else { arrived = .now; burstStartedAt = arrived }
            idleSince = 0
            state.openServerStream(id, unary: true, remoteEnded: true, credit: Int(peerSettings.initialWindow))
            workers.dispatch(UnaryWorkerPool.Call(connection: self, streamID: id, handler: unary, head: head, message: Array(message),
                                                  peer: peerDescription, receivedAt: arrived,
                                                  peerCertificateSubject: peerCertificateSubject))
            return true
        }
        openServerStream(id, head, message, endStream)
        return true
    }

    /// A request served as a stream: its stream, queue and handler task. Out of line: the task's creation
    /// (a resilient optional priority, sized at run time) cost the unary path a metadata lookup, a stack
    /// allocation and two destroys through value witnesses per call while it was inline.
    @inline(never)
    private func openServerStream(_ id: UInt32, _ head: consuming RequestHead, _ message: UnsafeRawBufferPointer?, _ endStream: Bool) {
        let stream = MuxStream(id: id, connection: self, sendWindow: Int(peerSettings.initialWindow),
                               receiveWindow: Int(localSettings.initialWindow))
        let loop = self.loop
        let inbound = InboundQueue<ServerInboundPart>(
            measure: { if case .message(let m) = $0 { m.count } else { 0 } },
            creditThreshold: Int(localSettings.initialWindow / 2),
            onCredit: { n in MuxConnection.onLoop(loop) { stream.connection.grantCredit(stream, n) } })
        stream.inbound = .server(inbound)
        if let message {
            stream.creditDebt += message.count  // not flow controlled: taking it returns no credit
            inbound.yield(.message(Array(message)))
        }
        if endStream {
            inbound.yield(.end)
            stream.remoteEnded = true
        }
        streams[id] = stream
        state.openServerStream(id, unary: false, remoteEnded: endStream, credit: 0)
        idleSince = 0
        if head.timeoutMicroseconds > 0, let workers {
            let now = Timestamp.now
            let arrived = burstStartedAt ?? now
            let budget = head.timeoutMicroseconds >= UInt64(Int64.max / 1000) ? Int64.max : Int64(head.timeoutMicroseconds) * 1000
            workers.deadlines.watch(.stream(ServerDeadlines.WeakStream(stream: stream)), deadline: arrived.advanced(byNanoseconds: budget), now: now, loopNow: loop.nowMilliseconds)
        }
        let serverStream = ServerStream(head: head, inbound: inbound, outbound: MuxServerOutbound(stream: stream, loop: loop),
                                        peer: peerDescription, peerCertificateSubject: peerCertificateSubject)
        let handler = self.handler!.handler
        stream.handlerTask = Task(executorPreference: loop) {
            await handler.handleStream(serverStream)
            MuxConnection.onLoop(loop) { stream.connection.handlerReturned(stream) }
        }
    }

    /// Ends a stream whose handler returned without ending it, so the client never waits forever.
    private func handlerReturned(_ stream: MuxStream) {
        guard !stream.closed, !stream.localEnded else { return }
        stream.pending.removeAll()
        let head = ResponseHead(status: .error(.internalError, "the handler returned without ending the stream"))
        write(stream, .end(head))
    }

    /// Server: the stream's deadline passed. Its handler is cancelled, waiting sends fail, and the client gets
    /// END (or a trailers-only RESPONSE) with DEADLINE_EXCEEDED; client frames that still arrive for it are ignored.
    func expireStream(_ stream: MuxStream) {
        guard role == .server, !stream.closed, !isClosed else { return }
        // The handler's receive and waiting sends fail with the deadline, its task is cancelled; then the END
        // goes out and the stream leaves the table.
        stream.terminate(TransportError(.deadlineExceeded, "the call's deadline passed"))
        write(stream, .end(ResponseHead(status: .error(.deadlineExceeded, "the call's deadline passed; the handler was cancelled"))))
    }

    // MARK: drain, ping, errors

    /// Server: tells the client to open no new streams here; streams up to the last seen id continue.
    func beginDrain(reason: String = "server is shutting down") {
        guard !isClosed, !isDraining else { return }
        state.beginDrain()
        let last = state.drainLimit
        tcp.withOutbound(reserving: FrameEncoder.drainSize(reason: reason)) {
            FrameEncoder.encodeDrain(lastStream: last, code: .noError, reason: reason, into: $0)
        }
        if activeStreams == 0 { closeDrained() }
    }

    /// Closes a draining connection that has no stream left, after what is queued was written: the DRAIN sent
    /// (or received) said everything, so no further frame goes out.
    func closeDrained() {
        guard !isClosed, !closingDrained else { return }
        closingDrained = true
        if role == .server { tcp.stopReading() }
        tcp.closeAfterFlush()
    }

    private func receiveDrain(lastStream: UInt32, code: ErrorCode, reason: String) {
        if code != .noError {
            closeReason = TransportError(.connectionClosed, "peer closed the connection (\(code)): \(reason)")
            // Streams the peer never saw were not processed.
            for s in streams.values where s.id > lastStream {
                remove(s, error: TransportError(.notProcessed, "peer closed the connection before processing the stream (\(code)): \(reason)"))
            }
            failUnaryCalls(above: lastStream, TransportError(.notProcessed, "peer closed the connection before processing the call (\(code)): \(reason)"))
            state.receiveDrain(lastStream: lastStream)  // no new streams in the window before the close callback
            tcp.close(error: nil)
            return
        }
        state.receiveDrain(lastStream: lastStream)
        for s in Array(streams.values) where s.id > lastStream {
            remove(s, error: TransportError(.notProcessed, "peer is draining and did not process the stream: \(reason)"))
        }
        failUnaryCalls(above: lastStream, TransportError(.notProcessed, "peer is draining and did not process the call: \(reason)"))
        owner?.muxConnectionDraining(self)
        if activeStreams == 0 && role == .client { closeDrained() }
    }

    /// A connection error: tell the peer why (DRAIN with the code), end every stream, close.
    func fail(_ code: ErrorCode, _ reason: String) {
        guard !isClosed else { return }
        if code != .noError && code != .cancelled {
            logger?.notice("connection error", metadata: ["peer": "\(peerDescription)", "code": "\(code)", "reason": "\(reason)"])
        }
        let error = TransportError(code == .flowControlError || code == .protocolError || code == .frameSizeError || code == .badPreface
                                   ? .protocolError : .connectionClosed, "\(code): \(reason)")
        closeReason = error
        // Streams above an earlier DRAIN's limit were never processed: the limit must not rise.
        let last = min(state.lastStreamID, state.drainLimit)
        let r = String(reason.utf8.prefix(1024)) ?? "error"
        tcp.withOutbound(reserving: FrameEncoder.drainSize(reason: r)) {
            FrameEncoder.encodeDrain(lastStream: last, code: code, reason: r, into: $0)
        }
        isClosed = true
        tcp.stopReading()
        // Nothing more is read: give back the incomplete frame's buffer and its charge now, not at the close
        // (which waits for a peer that may never read).
        accumulator = FrameAccumulator(headerSize: FrameHeader.size, maxPayload: Int(localSettings.maxFrameSize))
        releaseInbound()
        failedAt = loop.nowMilliseconds
        let open = Array(streams.values)
        streams.removeAll()
        for s in open { s.terminate(error) }
        endUnaryCalls(error)
        state.close()
        tcp.closeAfterFlush()
    }

    /// Gives the incomplete frame's charge back to the budget.
    private func releaseInbound() {
        if inboundCharged != 0 {
            _ = inboundBudget?.charge(-inboundCharged)
            inboundCharged = 0
        }
        partialSince = 0
    }

    /// Closes now; open streams end with `error`.
    func close(_ error: TransportError) {
        guard !isClosed else { return }
        closeReason = error
        state.stopOpening()  // no new streams in the window before the close callback
        tcp.close(error: nil)
    }

    /// Housekeeping, called periodically by the owner: settings timeout, frame timeout, keepalive ping and its
    /// timeout.
    /// Returns false when the connection was found dead and is closing.
    func tick(now: UInt64, keepaliveInterval: UInt64, pingTimeout: UInt64, settingsTimeout: UInt64, frameTimeout: UInt64) -> Bool {
        guard !isClosed else {
            // A failed connection whose peer does not take our last bytes (DRAIN) within the ping timeout is
            // closed without them.
            if failedAt != 0 && now - failedAt >= max(pingTimeout, 1) {
                failedAt = 0
                tcp.close()
            }
            return false
        }
        if !peerSettingsReceived && now - createdAt >= settingsTimeout {
            fail(.settingsTimeout, "no SETTINGS within \(settingsTimeout) ms")
            return false
        }
        if frameTimeout > 0 && partialSince != 0 && now - max(partialSince, lastReadAt) >= frameTimeout {
            fail(.frameTimeout, "a frame begun \(now - partialSince) ms ago is still incomplete (\(accumulator.bufferedByteCount) bytes)")
            return false
        }
        if let sent = pingSentAt {
            if now - sent >= pingTimeout {
                fail(.pingTimeout, "no PING answer within \(pingTimeout) ms")
                return false
            }
        } else if keepaliveInterval > 0 && now - lastReadAt >= keepaliveInterval {
            sendPing(now: now)
        }
        return true
    }

    func sendPing(now: UInt64) {
        guard !isClosed, pingSentAt == nil else { return }
        pingCounter &+= 1
        pingSentAt = now
        let opaque = pingCounter
        tcp.withOutbound(reserving: FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: false, opaque: opaque, into: $0) }
    }
}

/// A server's ``ServerHandler``, opened once when the server starts, behind a class reference that its
/// connections share: the unary path's lookup per request is a call through the class's table. (Read from the
/// connection as an existential, the handler was copied through its value witnesses twice per request, and each
/// connection held its 40 bytes.)
class ServerHandlerRef: @unchecked Sendable {
    /// The handler itself, for the streams.
    let handler: any ServerHandler

    static func make(_ handler: some ServerHandler) -> ServerHandlerRef { Typed(handler) }

    fileprivate init(_ handler: any ServerHandler) { self.handler = handler }

    /// ``ServerHandler/unaryHandler(for:)`` of ``handler``.
    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { handler.unaryHandler(for: head) }

    private final class Typed<Handler: ServerHandler>: ServerHandlerRef, @unchecked Sendable {
        let typed: Handler
        init(_ handler: Handler) {
            typed = handler
            super.init(handler)
        }
        override func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { typed.unaryHandler(for: head) }
    }
}
