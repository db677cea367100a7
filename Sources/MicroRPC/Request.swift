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
    public var metadata: Metadata
    public var body: [UInt8]
}

extension Response {
    // Through the memberwise initializer (the stored properties' order makes its labels differ from these): the
    // value is made at once. Assigned field by field, a value was built twice, copied and one copy destroyed.
    public init(body: [UInt8], metadata: Metadata = Metadata()) {
        self.init(metadata: metadata, body: body)
    }
}
