/// The status line and headers of a response.
public struct HTTPResponseHead: Sendable, Hashable {
    public var status: Int
    public var reason: String
    /// Header names as sent; look them up with ``header(_:)``, which ignores case.
    public var headers: [String: String]

    public init(status: Int, reason: String, headers: [String: String]) {
        self.status = status
        self.reason = reason
        self.headers = headers
    }

    /// The value of the header `name`, ignoring case (the last one when repeated).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.key.lowercased() == lower }?.value
    }
}

/// A complete, buffered response.
public struct HTTPResponse: Sendable, Hashable {
    public var head: HTTPResponseHead
    public var body: [UInt8]

    public init(head: HTTPResponseHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
}
