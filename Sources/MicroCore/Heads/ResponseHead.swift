/// What a RESPONSE or a server's END frame says: status and metadata (docs/PROTOCOL.md §6.3).
public struct ResponseHead: Equatable, Sendable {
    public var metadata: Metadata
    public var status: Status
}

extension ResponseHead {
    // Through the memberwise initializer (the stored properties' order makes its labels differ from these): the
    // value is made at once. Assigned field by field, a value was built twice, copied and one copy destroyed.
    public init(status: Status = .ok, metadata: Metadata = Metadata()) {
        self.init(metadata: metadata, status: status)
    }
}
