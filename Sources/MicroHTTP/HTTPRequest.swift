/// One HTTP/1.1 request. The client sends it with `Connection: close` and, for a body, `Content-Length`.
public struct HTTPRequest: Sendable, Hashable {
    public var method: String
    /// The request target, e.g. `/v3/kv/range`.
    public var path: String
    /// Extra headers (`Host`, `Content-Length` and `Connection` are written by the client).
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String = "GET", path: String, headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The bytes on the wire for a request to `host`.
    func serialized(host: String) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" { head += "Content-Length: \(body.count)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}
