public import HTTPTypes

/// Why a request could not be read: each maps to the status the server answers before it closes the connection.
public enum HTTPParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Malformed syntax (400).
    case badRequest(String)
    /// The request line is longer than the limit (414).
    case uriTooLong(limit: Int)
    /// The header fields are larger or more than the limits allow (431).
    case headersTooLarge(limit: Int)
    /// The body is larger than the limit (413).
    case bodyTooLarge(limit: Int)
    /// A method or transfer coding this server does not implement (501).
    case notImplemented(String)
    /// An `Expect` other than `100-continue` (417).
    case expectationFailed
    /// An HTTP version other than 1.0 and 1.1 (505).
    case versionNotSupported

    public var status: HTTPResponse.Status {
        switch self {
        case .badRequest: .badRequest
        case .uriTooLong: .uriTooLong
        case .headersTooLarge: .requestHeaderFieldsTooLarge
        case .bodyTooLarge: .contentTooLarge
        case .notImplemented: .notImplemented
        case .expectationFailed: .expectationFailed
        case .versionNotSupported: .httpVersionNotSupported
        }
    }

    public var description: String {
        switch self {
        case .badRequest(let why): "bad request: \(why)"
        case .uriTooLong(let limit): "request line longer than \(limit) bytes"
        case .headersTooLarge(let limit): "header fields larger than \(limit) bytes or too many"
        case .bodyTooLarge(let limit): "body larger than \(limit) bytes"
        case .notImplemented(let what): "not implemented: \(what)"
        case .expectationFailed: "only Expect: 100-continue is supported"
        case .versionNotSupported: "only HTTP/1.1 and HTTP/1.0 are supported"
        }
    }
}

/// Bounds on what one request may make the server hold.
public struct HTTPRequestLimits: Sendable, Hashable {
    /// The request line (method, target, version), in bytes (414 beyond).
    public var maxRequestLineBytes = 8 * 1024
    /// All header fields together, in bytes (431 beyond); trailers count the same.
    public var maxHeaderBytes = 32 * 1024
    /// Header fields (431 beyond).
    public var maxHeaderCount = 100
    /// The body, after chunked decoding (413 beyond).
    public var maxBodyBytes = 4 << 20

    public init() {}
}
