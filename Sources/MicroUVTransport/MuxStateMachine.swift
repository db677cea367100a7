internal import MicroCore
internal import MicroFraming

/// The protocol state of one multiplexed connection, apart from the I/O (docs/PROTOCOL.md §8): which streams are
/// idle, open or closed, what each one has received, and what every frame received means. A value type that takes
/// frames and returns a verdict; ``MuxConnection`` performs it (queues, continuations, handler tasks, writes).
///
/// A unary call (the two-frame form) is a state of a stream here, not a second protocol: the same rules apply to
/// it as to any stream (frames after the peer ended its direction, WINDOW overflow, idle and closed ids).
///
/// Not covered here: flow-control accounting of long-form streams (their windows live with their queues in
/// `MuxStream`), message counts of unary calls, and the content of frames.
///
/// Loop-confined in use (a field of a loop-confined connection).
struct MuxStateMachine {
    enum Role { case client, server }

    /// What is known of one open stream.
    struct StreamState {
        /// A unary call on the fast path (no stream object at the connection).
        var unary: Bool
        /// The peer ended its direction (END_STREAM, or END).
        var remoteEnded: Bool
        /// Client: the server's RESPONSE head arrived.
        var headReceived = false
        /// Server, unary: the credit the client granted for the response direction (a unary response needs none;
        /// only the overflow rule applies).
        var credit = 0
    }

    /// What to do with a frame for a stream.
    enum Verdict: Equatable {
        /// Accepted: act on it. `unary`: the stream is a unary call on the fast path.
        case accept(unary: Bool)
        /// A late frame for a closed stream, or a REQUEST the server does not process (after its DRAIN): ignore.
        case ignore
        /// Server: answer the REQUEST with this status at once; the stream never opens.
        case refuse(Status)
        /// A connection error: send DRAIN with this code and reason, then close.
        case error(ErrorCode, String)
    }

    let role: Role
    /// Our own limit of open streams (server: REQUESTs beyond it are refused).
    let maxConcurrentStreams: Int
    private(set) var settingsReceived = false
    /// Client: the last id handed out. Server: the highest REQUEST id received.
    private(set) var lastStreamID: UInt32 = 0
    /// Server: REQUESTs above this id are not processed (our DRAIN). Client: the peer's DRAIN limit.
    private(set) var drainLimit: UInt32 = .max
    private(set) var isDraining = false
    private(set) var isClosed = false
    /// The open streams, unary calls included.
    private(set) var open = StreamTable<StreamState>()

    init(role: Role, maxConcurrentStreams: Int) {
        self.role = role
        self.maxConcurrentStreams = maxConcurrentStreams
    }

    /// Streams open now, unary calls included.
    var openCount: Int { open.count }

    /// Whether new streams may be opened (client).
    var acceptsNewStreams: Bool { !isClosed && !isDraining && lastStreamID < UInt32.max - 1 }

    // MARK: connection

    /// Any frame before the peer's first SETTINGS must be that SETTINGS.
    func checkFirstFrame(isSettings: Bool) -> Verdict {
        if settingsReceived || isSettings { return .accept(unary: false) }
        return .error(.protocolError, "the first frame must be SETTINGS")
    }

    /// The peer's SETTINGS (not an ACK) arrived; true the first time.
    mutating func receiveSettings() -> Bool {
        defer { settingsReceived = true }
        return !settingsReceived
    }

    /// Server: we stop taking streams above the highest id received.
    mutating func beginDrain() {
        isDraining = true
        drainLimit = min(drainLimit, lastStreamID)
    }

    /// No new streams from now on (the connection is closing).
    mutating func stopOpening() { isDraining = true }

    /// The peer's DRAIN: no new streams; ours above `lastStream` were not processed.
    mutating func receiveDrain(lastStream: UInt32) {
        isDraining = true
        drainLimit = min(drainLimit, lastStream)
    }

    /// A connection error or close: every stream ends; the drain limit never rises.
    mutating func close() {
        isClosed = true
        isDraining = true
        drainLimit = min(lastStreamID, drainLimit)
        open.removeAll()
    }

    // MARK: streams opened or closed by this side

    /// Client: the id of a new stream, now open (a unary call has ended its direction at once).
    mutating func openClientStream(unary: Bool) -> UInt32 {
        precondition(role == .client && acceptsNewStreams)
        lastStreamID += 1
        open.insert(lastStreamID, StreamState(unary: unary, remoteEnded: false))
        return lastStreamID
    }

    /// Server: a REQUEST accepted by ``receiveRequest(_:)`` is served; the stream is open.
    mutating func openServerStream(_ id: UInt32, unary: Bool, remoteEnded: Bool, credit: Int) {
        open.insert(id, StreamState(unary: unary, remoteEnded: remoteEnded, credit: credit))
    }

    /// The stream ended at this side (answered, completed, cancelled, expired); later frames for it are ignored.
    @discardableResult
    mutating func streamClosed(_ id: UInt32) -> Bool { open.removeValue(forKey: id) != nil }

    /// Client: ids above `lastStream` that are still open (the peer did not process them).
    func open(above lastStream: UInt32) -> [UInt32] { open.allKeys.filter { $0 > lastStream } }

    // MARK: frames received

    /// A stream that is not open: a late frame (closed: ignored) or a frame for an idle stream (an error).
    private func notOpen(_ id: UInt32, _ type: String) -> Verdict {
        id <= lastStreamID ? .ignore : .error(.protocolError, "\(type) for stream \(id), which was never opened")
    }

    /// Server: a REQUEST. Accepted: the caller opens it with ``openServerStream(_:unary:remoteEnded:credit:)``
    /// (or answers it otherwise and leaves it closed).
    mutating func receiveRequest(_ id: UInt32) -> Verdict {
        guard role == .server else { return .error(.protocolError, "REQUEST sent to a client") }
        guard id > lastStreamID else { return .error(.protocolError, "REQUEST with stream id \(id) not above \(lastStreamID)") }
        lastStreamID = id
        // Sent after our DRAIN: not processed; the client retries it elsewhere.
        if id > drainLimit { return .ignore }
        if open.count >= maxConcurrentStreams {
            return .refuse(.nack(restartable: true, .resourceExhausted, "too many concurrent streams (\(maxConcurrentStreams))"))
        }
        return .accept(unary: false)
    }

    /// Client: a RESPONSE (the head, with the end when `endStream`).
    mutating func receiveResponse(_ id: UInt32, endStream: Bool) -> Verdict {
        guard role == .client else { return .error(.protocolError, "RESPONSE sent to a server") }
        guard var s = open[id] else { return notOpen(id, "RESPONSE") }
        if s.headReceived { return .error(.protocolError, "second RESPONSE on stream \(id)") }
        if s.remoteEnded { return .error(.protocolError, "RESPONSE after the end of stream \(id)") }
        if endStream {
            peerEnded(id, s)
        } else {
            s.headReceived = true
            open.insert(id, s)
        }
        return .accept(unary: s.unary)
    }

    /// A DATA frame.
    mutating func receiveData(_ id: UInt32, endStream: Bool) -> Verdict {
        guard let s = open[id] else { return notOpen(id, "DATA") }
        if role == .client && !s.headReceived { return .error(.protocolError, "DATA before RESPONSE on stream \(id)") }
        if s.remoteEnded { return .error(.protocolError, "DATA after the end of stream \(id)") }
        if endStream { peerEnded(id, s) }
        return .accept(unary: s.unary)
    }

    /// An END frame; `hasHead`: it carries a status (a server's END must).
    mutating func receiveEnd(_ id: UInt32, hasHead: Bool) -> Verdict {
        guard let s = open[id] else { return notOpen(id, "END") }
        if s.remoteEnded { return .error(.protocolError, "END after the end of stream \(id)") }
        if role == .client && !hasHead { return .error(.protocolError, "END without a status from the server on stream \(id)") }
        peerEnded(id, s)
        return .accept(unary: s.unary)
    }

    /// The peer ended its direction of stream `id`. At a client that closes the stream (the server's direction
    /// ended, §8.3); at a server the stream stays open until it answers.
    private mutating func peerEnded(_ id: UInt32, _ state: StreamState) {
        if role == .client {
            open.removeValue(forKey: id)
        } else {
            var s = state
            s.remoteEnded = true
            open.insert(id, s)
        }
    }

    /// A CANCEL: accepted for an open stream, which is closed now.
    mutating func receiveCancel(_ id: UInt32) -> Verdict {
        guard let s = open.removeValue(forKey: id) else { return notOpen(id, "CANCEL") }
        return .accept(unary: s.unary)
    }

    /// A WINDOW for a stream (id 0 is reserved: ignored). For a server's unary call the credit is checked here;
    /// for a long-form stream the caller adds it to the stream's send window (and checks that).
    mutating func receiveWindow(_ id: UInt32, increment: UInt32) -> Verdict {
        if id == 0 { return .ignore }
        guard var s = open[id] else { return notOpen(id, "WINDOW") }
        if s.unary && role == .server {
            s.credit += Int(increment)
            if s.credit > Int(Int32.max) { return .error(.flowControlError, "WINDOW overflow on stream \(id)") }
            open.insert(id, s)
        }
        return .accept(unary: s.unary)
    }
}
