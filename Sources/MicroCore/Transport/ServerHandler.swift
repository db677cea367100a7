
/// A request that arrived whole (head, one message and the end, in one frame): a unary exchange.
public struct UnaryRequest: Sendable {
    public var head: RequestHead
    public var message: [UInt8]
    /// The remote peer, as text, when the transport knows it.
    public var peer: String
    /// The subject of the peer's verified TLS certificate (mTLS), one line; nil without one.
    public var peerCertificateSubject: String?
    /// When the transport received the request: the head's remaining budget counts from here.
    public var receivedAt: Timestamp
    /// The scope the transport bound for the task that runs the handler (see ``CallScope``), when it binds one
    /// per worker rather than per call: the handler sets the call's deadline there. Nil: the handler binds one.
    public var scope: CallScope?
}

extension UnaryRequest {
    // In an extension, so that the struct keeps its memberwise initializer: built through it, the value is made at
    // once; assigned field by field, it was built twice on the stack, copied (a retain per reference) and one
    // copy destroyed, on every call.
    public init(head: consuming RequestHead, message: consuming [UInt8], peer: String, receivedAt: Timestamp,
                scope: CallScope? = nil, peerCertificateSubject: String? = nil) {
        self.init(head: head, message: message, peer: peer, peerCertificateSubject: peerCertificateSubject,
                  receivedAt: receivedAt, scope: scope)
    }
}

/// The answer to a ``UnaryRequest``: status and metadata, and the message (absent for an error).
public struct UnaryReply: Sendable {
    public var message: [UInt8]?
    public var head: ResponseHead
}

extension UnaryReply {
    // Through the memberwise initializer (the stored properties' order makes its labels differ from these): the
    // value is made at once. Assigned field by field, a value was built twice, copied and one copy destroyed.
    public init(head: ResponseHead = ResponseHead(), message: [UInt8]?) {
        self.init(message: message, head: head)
    }
}

/// Answers unary requests. A class, so that the transport holds it by reference without allocating per call.
public protocol UnaryHandler: AnyObject, Sendable {
    /// Answers one request. Called at most once per request: a request cancelled or lost with its connection
    /// before its turn never reaches the handler (so what a handler counts, it counts in and out here). Runs as a
    /// task on the connection's event loop (its executor), so a handler that does not suspend completes without a
    /// thread hop. The task is cancelled when the caller cancels the call, the connection is lost or the call's
    /// deadline passes (the transport then answers DEADLINE_EXCEEDED itself); the reply is then dropped.
    ///
    /// `nonisolated(nonsending)`: it runs on the caller's executor (the loop), so calling it costs no executor
    /// check or switch.
    nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply
}

/// What a server transport hands its streams to.
///
/// A request that arrives whole may be answered on the unary path: the transport asks ``unaryHandler(for:)``
/// (on its own thread, without suspending) and, when given one, calls it with the message instead of building a
/// ``ServerStream``. Everything else, and every request for which it returns nil, goes to ``handleStream(_:)``.
public protocol ServerHandler: Sendable {
    /// The handler for a request that arrived whole, or nil to serve it as a stream. Must not block.
    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)?
    /// Serves one stream, in a task of its own on the connection's loop.
    func handleStream(_ stream: ServerStream) async
}

extension ServerHandler {
    public func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { nil }
}

/// A ``ServerHandler`` made of a closure that serves every request as a stream.
public struct StreamHandler: ServerHandler {
    let body: @Sendable (ServerStream) async -> Void

    public init(_ body: @escaping @Sendable (ServerStream) async -> Void) { self.body = body }

    public func handleStream(_ stream: ServerStream) async { await body(stream) }
}

extension UnaryHandler {
    /// Serves `stream` as this unary handler would: reads the one message (and the end of the client's direction),
    /// answers with the reply. For requests that did not arrive whole (the message in a DATA frame after the head).
    ///
    /// No message, or a second one: ERROR `invalidArgument`, the handler does not run. A reply message larger than
    /// the peer's maximum frame size: the call ends with ERROR `resourceExhausted` (never OK without the message).
    public func serveAsStream(_ stream: ServerStream, receivedAt: Timestamp = .now) async {
        let message: [UInt8]
        do {
            guard let m = try await stream.receive() else {
                try? await stream.finish(ResponseHead(status: .error(.invalidArgument, "a unary call needs one request message")))
                return
            }
            guard try await stream.receive() == nil else {
                try? await stream.finish(ResponseHead(status: .error(.invalidArgument, "a unary call takes one request message; a second one came")))
                return
            }
            message = m
        } catch {
            return
        }
        let reply = await handle(UnaryRequest(head: stream.head, message: message, peer: stream.peer, receivedAt: receivedAt,
                                              peerCertificateSubject: stream.peerCertificateSubject))
        try? await stream.sendHead(reply.head)
        if let m = reply.message {
            do {
                try await stream.send(m)
            } catch {
                if error.code == .messageTooLarge {
                    try? await stream.finish(ResponseHead(status: .error(.resourceExhausted, "the response is too large for the caller: \(error.message)")))
                }
                return
            }
        }
        try? await stream.finish(reply.head)
    }
}
