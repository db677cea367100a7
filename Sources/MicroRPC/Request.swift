public import MicroCore

/// A call's request, as go-micro's: the service and endpoint it is for, the content type of its body, the body,
/// and metadata.
public struct Request: Sendable {
    public var service: String
    public var endpoint: String
    public var contentType: String
    public var body: [UInt8]
    public var metadata: Metadata

    public init(service: String, endpoint: String, contentType: String = ContentType.raw, body: [UInt8], metadata: Metadata = Metadata()) {
        self.service = service
        self.endpoint = endpoint
        self.contentType = contentType
        self.body = body
        self.metadata = metadata
    }
}

/// A call's successful response: the body and the metadata the server sent.
public struct Response: Sendable {
    public var body: [UInt8]
    public var metadata: Metadata

    public init(body: [UInt8], metadata: Metadata = Metadata()) {
        self.body = body
        self.metadata = metadata
    }
}
