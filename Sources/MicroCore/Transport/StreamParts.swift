
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
    public var message: [UInt8]?
    public var trailers: ResponseHead?

    public init(head: ResponseHead, message: [UInt8]?, trailers: ResponseHead? = nil) {
        self.head = head
        self.message = message
        self.trailers = trailers
    }

    /// The final status: the trailers' when present, else the head's.
    public var status: Status { trailers?.status ?? head.status }
}
