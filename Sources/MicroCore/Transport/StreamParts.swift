
/// What a client receives on a stream, in order: one head, messages, one end.
public enum ClientInboundPart: Sendable, Equatable {
    /// The server's RESPONSE head: status and metadata.
    case head(ResponseHead)
    case message([UInt8])
    /// The server ended its direction; the head (trailers) carries the final status, when the server sent one.
    case end(ResponseHead?)
}

/// What a server receives on a stream after the request head: messages, then one end.
public enum ServerInboundPart: Sendable, Equatable {
    case message([UInt8])
    case end
}

/// What a server sends: one head first (optional: a message or end without it implies OK), messages, one end.
public enum ServerOutboundPart: Sendable {
    case head(ResponseHead)
    case message([UInt8])
    /// Ends the server's direction with a final status (trailers).
    case end(ResponseHead)
}

/// The response to a unary call: the head (status, metadata), the message if any, and trailers if sent.
public struct UnaryResponse: Sendable, Equatable {
    public var head: ResponseHead
    // Declared before `message`, so that the memberwise initializer (`head:trailers:message:`) differs from the
    // public one, which builds through it (see ``init(head:message:trailers:)``).
    public var trailers: ResponseHead?
    public var message: [UInt8]?

    /// The final status: the trailers' when present, else the head's.
    public var status: Status { trailers?.status ?? head.status }
}

extension UnaryResponse {
    // Through the memberwise initializer: the value is made at once. Assigned field by field, every response was
    // built twice on the client, copied (a retain per reference) and one copy destroyed.
    public init(head: ResponseHead, message: [UInt8]?, trailers: ResponseHead? = nil) {
        self.init(head: head, trailers: trailers, message: message)
    }
}
