
/// The one error type of RPC outcomes: what a call ended with when it did not succeed, whether the server said
/// so (an ERROR or NACK status) or the call never got an answer (connect failure, deadline, cancellation).
///
/// Codes follow gRPC's numbering, so that they travel in a status as they are and mean the same to every peer.
/// Misuse of the API (a handler registered twice, a type no codec can encode) is ``RPCUsageError``, not this.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// The outcome's code: an extensible struct numbered as gRPC's (see `StatusCode`).
    public typealias Code = StatusCode

    public var code: Code
    public var message: String
    /// Metadata the server sent with the status.
    public var metadata: Metadata
    /// What caused the error locally (a transport error, a codec's error), when there was such a cause.
    public var cause: (any Error)?
    /// Whether the server certainly did not start the work (a connect failure, a restartable NACK, a request
    /// refused by a draining server), so that a retry on another node is safe even for a call that is not
    /// idempotent.
    public var workNotStarted: Bool

    public init(_ code: Code, _ message: String, metadata: Metadata = Metadata(), cause: (any Error)? = nil, workNotStarted: Bool = false) {
        self.code = code
        self.message = message
        self.metadata = metadata
        self.cause = cause
        self.workNotStarted = workNotStarted
    }

    public var description: String { "\(code.name) (\(code.rawValue)): \(message)" }
}

extension StatusCode {
    /// The code carried by a status, kept as it is (also a number this version does not name).
    public init(status code: UInt32) { self.init(rawValue: code) }
}

/// Misuse of the API, found locally: nothing was sent.
public struct RPCUsageError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
