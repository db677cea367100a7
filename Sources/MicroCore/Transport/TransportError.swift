/// The one error type of the transport layer: why a connection or stream could not carry a message.
///
/// Outcomes of a call that the server reports (OK, ERROR, NACK) are not errors of the transport: they arrive
/// as a ``MicroFraming/ResponseHead`` on the stream.
public struct TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: Equatable, Sendable {
        /// The connection could not be established (refused, unreachable, dial timeout). Retry-safe.
        case connectFailed
        /// The connection closed or broke while the stream was open.
        case connectionClosed
        /// The peer violated the protocol (or we did); the connection was closed.
        case protocolError
        /// The stream was cancelled, by the peer or locally.
        case cancelled
        /// The stream was not processed by the server (it drained or refused it). Retry-safe.
        case notProcessed
        /// A message exceeded the negotiated maximum frame size; nothing was sent.
        case messageTooLarge
        /// The caller's deadline passed.
        case deadlineExceeded
        /// The pool could not give a stream: too many waiters, or none freed up before the deadline.
        case poolExhausted
        /// The transport is shut down or shutting down.
        case shutdown
        /// Misuse of a stream: e.g. sending after finishing.
        case invalidState
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Whether the server certainly did not start the work, so that retrying elsewhere is safe.
    public var isRetrySafe: Bool { code == .connectFailed || code == .notProcessed }

    public var description: String { "\(code): \(message)" }
}
