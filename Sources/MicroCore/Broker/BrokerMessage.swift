/// A message published on a topic (go-micro's `broker.Message`): a header of string pairs and a body.
///
/// The header carries what the codec layer needs (`Content-Type`) and anything the application adds. Header
/// names are kept as given; the embedded broker sends them as request metadata, whose names must be short
/// (below 64 KiB) like every metadata key.
public struct BrokerMessage: Sendable, Hashable {
    public var header: [String: String]
    public var body: [UInt8]

    public init(header: [String: String] = [:], body: [UInt8]) {
        self.header = header
        self.body = body
    }

    /// The header that names the body's encoding.
    public static let contentTypeHeader = "Content-Type"

    /// The `Content-Type` header, when set.
    public var contentType: String? {
        get { header[Self.contentTypeHeader] }
        set { header[Self.contentTypeHeader] = newValue }
    }
}
