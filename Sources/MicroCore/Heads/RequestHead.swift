/// What a REQUEST frame says about the call it opens (docs/PROTOCOL.md §6.2).
public struct RequestHead: Equatable, Sendable {
    public var service: String
    public var endpoint: String
    public var contentType: String
    /// The caller's remaining budget in microseconds when the frame was sent; 0 means no deadline.
    /// Always relative: clocks of the two hosts are never compared.
    public var timeoutMicroseconds: UInt64
    /// 1 for the first attempt, 2 for the first retry, ...
    public var attempt: UInt16
    public var metadata: Metadata

    @inlinable
    public init(service: String, endpoint: String, contentType: String = "application/octet-stream",
                timeoutMicroseconds: UInt64 = 0, attempt: UInt16 = 1, metadata: Metadata = Metadata()) {
        self.service = service
        self.endpoint = endpoint
        self.contentType = contentType
        self.timeoutMicroseconds = timeoutMicroseconds
        self.attempt = attempt
        self.metadata = metadata
    }
}
