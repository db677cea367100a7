internal import MicroCore
/// The codecs a client or server knows, by content type. Lookups compare the few content types in order: a
/// server has a handful of codecs, and comparing short strings costs less than hashing them.
public struct CodecSet: Sendable {
    public private(set) var codecs: [any Codec] {
        didSet { contentTypes = codecs.map(\.contentType) }
    }
    /// The content types known, in the order of `codecs` (compared without calling into each codec).
    public private(set) var contentTypes: [String]

    /// Raw bytes, JSON and protobuf.
    public static let standard = CodecSet([RawCodec(), JSONCodec(), ProtobufCodec()])

    public init(_ codecs: [any Codec]) {
        self.codecs = codecs
        contentTypes = codecs.map(\.contentType)
    }

    /// Adds a codec, replacing one for the same content type.
    public mutating func register(_ codec: any Codec) {
        codecs.removeAll { $0.contentType == codec.contentType }
        codecs.append(codec)
    }

    /// Whether a codec reads `contentType` (cheaper than ``codec(for:)`` for the common exact match).
    public func knows(_ contentType: String) -> Bool {
        for t in contentTypes where t == contentType { return true }
        return codec(for: contentType) != nil
    }

    /// The codec for `contentType` (parameters such as `; charset=utf-8` are ignored).
    public func codec(for contentType: String) -> (any Codec)? {
        for i in contentTypes.indices where contentTypes[i] == contentType { return codecs[i] }
        if let semicolon = contentType.firstIndex(of: ";") {
            let bare = contentType[..<semicolon].trimmingSpaces()
            for c in codecs where c.contentType == bare { return c }
        }
        if contentType == "application/x-protobuf" || contentType == "application/grpc+proto" {
            return codec(for: ContentType.protobuf)
        }
        return nil
    }


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
