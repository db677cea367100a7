/// Why an HTTP exchange failed.
public enum HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The TCP connection could not be made (refused, unreachable, connect timeout). The request was not sent.
    case connectFailed(String)
    /// The response did not complete by the deadline (the connection is closed).
    case timedOut
    /// The connection closed before the response was complete.
    case connectionClosed(String)
    /// The peer sent something that is not HTTP/1.1 as this client understands it.
    case malformedResponse(String)
    /// The caller cancelled the exchange.
    case cancelled

    public var description: String {
        switch self {
        case .connectFailed(let why): "connect failed: \(why)"
        case .timedOut: "timed out"
        case .connectionClosed(let why): "connection closed: \(why)"
        case .malformedResponse(let why): "malformed response: \(why)"
        case .cancelled: "cancelled"
        }
    }
}
