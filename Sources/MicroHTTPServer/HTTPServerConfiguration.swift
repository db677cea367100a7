/// How an ``HTTPServer`` bounds its connections. Every property has a default.
public struct HTTPServerConfiguration: Sendable {
    /// What one request may make the server hold.
    public var limits = HTTPRequestLimits()
    /// A keep-alive connection with no request under way is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// From the first byte of a request to its last: a slower client gets 408 and the connection closes.
    public var requestTimeout: Duration = .seconds(10)
    /// Connections beyond this many get 503 and are closed at once.
    public var maxConnections = 10_000
    /// Bytes of pipelined requests buffered while a response is pending; reading pauses beyond.
    public var maxPipelinedBytes = 256 * 1024
    /// The `Server` header; nil sends none.
    public var serverHeader: String? = "swift-micro"

    public init() {}
}
