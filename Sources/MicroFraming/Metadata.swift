/// Ordered key/value pairs sent with a request or response (docs/PROTOCOL.md §6.1). Keys are compared
/// case-insensitively by ``subscript(_:)``; duplicates are kept in order.
public struct Metadata: Equatable, Sendable, ExpressibleByDictionaryLiteral, Sequence {
    public var pairs: [(key: String, value: String)]

    public init() { pairs = [] }
    public init(dictionaryLiteral elements: (String, String)...) { pairs = elements.map { (key: $0.0, value: $0.1) } }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    /// The first value for `key` (ASCII case-insensitive); setting replaces every value for it.
    public subscript(_ key: String) -> String? {
        get { pairs.first { $0.key.lowercased() == key.lowercased() }?.value }
        set {
            pairs.removeAll { $0.key.lowercased() == key.lowercased() }
            if let newValue { pairs.append((key: key, value: newValue)) }
        }
    }

    public mutating func append(_ key: String, _ value: String) { pairs.append((key: key, value: value)) }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// count u16, then per pair: key (u16 length + UTF-8), value (u16 length + UTF-8).
    public var encodedSize: Int { pairs.reduce(2) { $0 + ByteWriter.size16($1.key) + ByteWriter.size16($1.value) } }

    public func encode(_ w: inout ByteWriter) {
        w.u16(UInt16(pairs.count))
        for p in pairs {
            w.string16(p.key)
            w.string16(p.value)
        }
    }

    public static func decode(_ r: inout ByteReader) throws(FramingError) -> Metadata {
        let n = Int(try r.u16("metadata count"))
        var m = Metadata()
        if n == 0 { return m }
        m.pairs.reserveCapacity(Swift.min(n, 64))
        for _ in 0..<n {
            let k = try r.string16("metadata key")
            let v = try r.string16("metadata value")
            m.pairs.append((key: k, value: v))
        }
        return m
    }

    /// Whether every key and value fits the wire format (u16 lengths, at most 65,535 pairs).
    public var isEncodable: Bool {
        pairs.count <= Int(UInt16.max) && pairs.allSatisfy { $0.key.utf8.count <= Int(UInt16.max) && $0.value.utf8.count <= Int(UInt16.max) }
    }
}
