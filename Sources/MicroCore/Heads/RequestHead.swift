/// What a REQUEST frame says about the call it opens (docs/PROTOCOL.md §6.2).
public struct RequestHead: Equatable, Sendable {
    public var service: String
    public var endpoint: String
    public var contentType: String
    /// The caller's remaining budget in microseconds when the frame was sent; 0 means no deadline.
    /// Always relative: clocks of the two hosts are never compared.
    public var timeoutMicroseconds: UInt64
    public var metadata: Metadata
    /// 1 for the first attempt, 2 for the first retry, ...
    public var attempt: UInt16
}

extension RequestHead {
    // Through the memberwise initializer (the stored properties' order makes its labels differ from these): the
    // value is made at once. Assigned field by field, a value was built twice, copied and one copy destroyed.
    public init(service: String, endpoint: String, contentType: String = "application/octet-stream",
                timeoutMicroseconds: UInt64 = 0, attempt: UInt16 = 1, metadata: Metadata = Metadata()) {
        self.init(service: service, endpoint: endpoint, contentType: contentType, timeoutMicroseconds: timeoutMicroseconds,
                  metadata: metadata, attempt: attempt)
    }
}
