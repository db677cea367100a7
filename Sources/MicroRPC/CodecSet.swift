/// The codecs a client or server knows, by content type. Lookups compare the few content types in order: a
/// server has a handful of codecs, and comparing short strings costs less than hashing them.
public struct CodecSet: Sendable {
    public private(set) var codecs: [any Codec]

    /// Raw bytes, JSON and protobuf.
    public static let standard = CodecSet([RawCodec(), JSONCodec(), ProtobufCodec()])

    public init(_ codecs: [any Codec]) { self.codecs = codecs }

    /// Adds a codec, replacing one for the same content type.
    public mutating func register(_ codec: any Codec) {
        codecs.removeAll { $0.contentType == codec.contentType }
        codecs.append(codec)
    }

    /// The codec for `contentType` (parameters such as `; charset=utf-8` are ignored).
    public func codec(for contentType: String) -> (any Codec)? {
        for c in codecs where c.contentType == contentType { return c }
        if let semicolon = contentType.firstIndex(of: ";") {
            let bare = contentType[..<semicolon].trimmingSpaces()
            for c in codecs where c.contentType == bare { return c }
        }
        if contentType == "application/x-protobuf" || contentType == "application/grpc+proto" {
            return codec(for: ContentType.protobuf)
        }
        return nil
    }

    /// The content types known, for error messages.
    public var contentTypes: [String] { codecs.map(\.contentType) }

    /// The error a server answers for a content type no codec reads.
    func unsupported(_ contentType: String) -> RPCError {
        RPCError(.invalidArgument, "unsupported content type \"\(contentType)\" (this server reads \(contentTypes.joined(separator: ", ")))")
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
