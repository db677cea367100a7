/// What a RESPONSE or a server's END frame says: status and metadata (docs/PROTOCOL.md §6.3).
public struct ResponseHead: Equatable, Sendable {
    public var status: Status
    public var metadata: Metadata

    @inlinable
    public init(status: Status = .ok, metadata: Metadata = Metadata()) {
        self.status = status
        self.metadata = metadata
    }
}
