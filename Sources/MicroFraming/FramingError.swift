/// Connection-level error codes (docs/PROTOCOL.md §7), carried in DRAIN and CANCEL frames.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noError = ErrorCode(rawValue: 0)
    public static let protocolError = ErrorCode(rawValue: 1)
    public static let internalError = ErrorCode(rawValue: 2)
    public static let flowControlError = ErrorCode(rawValue: 3)
    public static let frameSizeError = ErrorCode(rawValue: 4)
    public static let refusedStream = ErrorCode(rawValue: 5)
    public static let cancelled = ErrorCode(rawValue: 6)
    public static let settingsTimeout = ErrorCode(rawValue: 7)
    public static let tooManyStreams = ErrorCode(rawValue: 8)
    public static let badPreface = ErrorCode(rawValue: 9)
    public static let idleTimeout = ErrorCode(rawValue: 10)
    public static let pingTimeout = ErrorCode(rawValue: 11)
    public static let frameTimeout = ErrorCode(rawValue: 12)
    public static let resourceLimit = ErrorCode(rawValue: 13)

    public var description: String {
        switch self {
        case .noError: "NO_ERROR"
        case .protocolError: "PROTOCOL_ERROR"
        case .internalError: "INTERNAL_ERROR"
        case .flowControlError: "FLOW_CONTROL_ERROR"
        case .frameSizeError: "FRAME_SIZE_ERROR"
        case .refusedStream: "REFUSED_STREAM"
        case .cancelled: "CANCELLED"
        case .settingsTimeout: "SETTINGS_TIMEOUT"
        case .tooManyStreams: "TOO_MANY_STREAMS"
        case .badPreface: "BAD_PREFACE"
        case .idleTimeout: "IDLE_TIMEOUT"
        case .pingTimeout: "PING_TIMEOUT"
        case .frameTimeout: "FRAME_TIMEOUT"
        case .resourceLimit: "RESOURCE_LIMIT"
        default: "ERROR_\(rawValue)"
        }
    }
}

/// A violation of the wire protocol found while decoding: a connection error.
public struct FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The code to send in the DRAIN frame that closes the connection.
    public var code: ErrorCode
    /// What was wrong, for logs and for the peer.
    public var reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}
