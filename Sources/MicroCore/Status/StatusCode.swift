/// The code of an ERROR or NACK status (docs/PROTOCOL.md §6.3): an extensible set, numbered as gRPC's so that
/// codes mean the same to every peer and gateway. A receiver keeps codes it does not know as they are.
///
/// The transport and the RPC layer name codes through these constants, never by number. `RPCError.Code` is this
/// type.
public struct StatusCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Success; only an OK status carries it.
    public static let ok = StatusCode(rawValue: 0)
    /// The call was cancelled, usually by the caller.
    public static let cancelled = StatusCode(rawValue: 1)
    /// An error that fits no other code (also what an unknown error from a handler becomes).
    public static let unknown = StatusCode(rawValue: 2)
    /// The request is invalid whatever the server's state (bad argument, unreadable body, unknown content type).
    public static let invalidArgument = StatusCode(rawValue: 3)
    /// The call's deadline passed before it completed.
    public static let deadlineExceeded = StatusCode(rawValue: 4)
    public static let notFound = StatusCode(rawValue: 5)
    public static let alreadyExists = StatusCode(rawValue: 6)
    /// The caller is known but not allowed to call this endpoint.
    public static let permissionDenied = StatusCode(rawValue: 7)
    /// A limit was reached: the server's concurrency or rate limit, a message size.
    public static let resourceExhausted = StatusCode(rawValue: 8)
    public static let failedPrecondition = StatusCode(rawValue: 9)
    public static let aborted = StatusCode(rawValue: 10)
    public static let outOfRange = StatusCode(rawValue: 11)
    /// The endpoint (or service) is not served here.
    public static let unimplemented = StatusCode(rawValue: 12)
    /// A broken invariant: the server (or a peer) did something it must not.
    public static let internalError = StatusCode(rawValue: 13)
    /// The service cannot be reached now (no node, connection lost, refused): often worth a retry elsewhere.
    public static let unavailable = StatusCode(rawValue: 14)
    public static let dataLoss = StatusCode(rawValue: 15)
    /// The call carried no valid credentials.
    public static let unauthenticated = StatusCode(rawValue: 16)

    /// Every code this version names, in numeric order.
    public static let known: [StatusCode] = (0...16).map { StatusCode(rawValue: $0) }

    /// The code's name (`deadlineExceeded`), or `code N` for one this version does not name.
    public var name: String {
        switch rawValue {
        case 0: "ok"
        case 1: "cancelled"
        case 2: "unknown"
        case 3: "invalidArgument"
        case 4: "deadlineExceeded"
        case 5: "notFound"
        case 6: "alreadyExists"
        case 7: "permissionDenied"
        case 8: "resourceExhausted"
        case 9: "failedPrecondition"
        case 10: "aborted"
        case 11: "outOfRange"
        case 12: "unimplemented"
        case 13: "internalError"
        case 14: "unavailable"
        case 15: "dataLoss"
        case 16: "unauthenticated"
        default: "code \(rawValue)"
        }
    }

    public var description: String { name }
}

extension Status {
    /// An ERROR status with `code`.
    @inlinable
    public static func error(_ code: StatusCode, _ message: String) -> Status { .error(code: code.rawValue, message: message) }

    /// A NACK status with `code`: the server did not start the work.
    @inlinable
    public static func nack(restartable: Bool, _ code: StatusCode, _ message: String) -> Status {
        .nack(restartable: restartable, code: code.rawValue, message: message)
    }
}
