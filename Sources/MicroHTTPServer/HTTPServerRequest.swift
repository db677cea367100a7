public import HTTPTypes

/// A request as the handler sees it: the head (swift-http-types), the whole body, the peer.
public struct HTTPServerRequest: Sendable {
    public var head: HTTPRequest
    public var body: [UInt8]
    /// The client's `host:port`.
    public var remoteAddress: String

    public init(head: HTTPRequest, body: [UInt8], remoteAddress: String) {
        self.head = head
        self.body = body
        self.remoteAddress = remoteAddress
    }
}

/// A handler's answer: the head and the whole body. `Content-Length` and `Connection` are the server's to set.
public struct HTTPServerResponse: Sendable {
    public var head: HTTPResponse
    public var body: [UInt8]

    public init(status: HTTPResponse.Status, headerFields: HTTPFields = [:], body: [UInt8] = []) {
        head = HTTPResponse(status: status, headerFields: headerFields)
        self.body = body
    }

    /// A JSON body with its content type.
    public static func json(_ status: HTTPResponse.Status, _ json: String, headerFields: HTTPFields = [:]) -> HTTPServerResponse {
        var fields = headerFields
        fields[.contentType] = "application/json"
        return HTTPServerResponse(status: status, headerFields: fields, body: Array(json.utf8))
    }

    /// `s` as the inside of a JSON string (quotes, backslashes and control characters escaped).
    public static func jsonEscaped(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A plain-text body with its content type.
    public static func text(_ status: HTTPResponse.Status, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPServerResponse {
        var fields = HTTPFields()
        fields[.contentType] = contentType
        return HTTPServerResponse(status: status, headerFields: fields, body: Array(text.utf8))
    }
}

/// Answers requests. Runs on the connection's event loop (as a task whose executor is the loop); one request
/// at a time per connection, in order (pipelined requests wait).
public typealias HTTPHandler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse
