public import MicroFraming

/// The one error type of RPC outcomes: what a call ended with when it did not succeed, whether the server said
/// so (an ERROR or NACK status) or the call never got an answer (connect failure, deadline, cancellation).
///
/// Codes follow gRPC's numbering, so that they travel in a status as they are and mean the same to every peer.
/// Misuse of the API (a handler registered twice, a type no codec can encode) is ``RPCUsageError``, not this.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public enum Code: UInt32, Sendable, CaseIterable {
        case cancelled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case internalError = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16
    }

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

    public init(_ code: Code, _ message: String, metadata: Metadata = [:], cause: (any Error)? = nil, workNotStarted: Bool = false) {
        self.code = code
        self.message = message
        self.metadata = metadata
        self.cause = cause
        self.workNotStarted = workNotStarted
    }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }
}

extension RPCError.Code {
    /// The code carried by a status; unknown numbers become `.unknown`.
    public init(status code: UInt32) { self = RPCError.Code(rawValue: code) ?? .unknown }
}

/// Misuse of the API, found locally: nothing was sent.
public struct RPCUsageError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
