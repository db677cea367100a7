public import MicroCore

/// Thrown by a ``ServerMiddleware`` (or a handler) to refuse a call before its work started: the caller gets a
/// NACK, which it may retry on another node at once when `restartable` (a rate limit, an overloaded node).
///
/// An ``RPCError`` thrown by a handler never becomes a NACK, even when it says `workNotStarted` (that flag of an
/// error from the handler's own downstream call says nothing about this call): refuse with this instead.
public struct ServerRefusal: Error, Sendable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String
    public var restartable: Bool

    public init(_ code: StatusCode, _ message: String, restartable: Bool = true) {
        self.code = code
        self.message = message
        self.restartable = restartable
    }

    public var status: Status { .nack(restartable: restartable, code, message) }

    public var description: String { "refused, \(code.name): \(message)" }
}
