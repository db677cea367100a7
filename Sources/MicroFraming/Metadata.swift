/// Ordered key/value pairs sent with a request or response (docs/PROTOCOL.md §6.1). Keys are compared
/// case-insensitively by ``subscript(_:)``; duplicates are kept in order.
public struct Metadata: Equatable, Sendable, ExpressibleByDictionaryLiteral, Sequence {
    public var pairs: [(key: String, value: String)]

    public init() { pairs = [] }
    public init(dictionaryLiteral elements: (String, String)...) {
        // `[:]` is every default argument: no mapping (and no reference counting) for it.
        pairs = elements.isEmpty ? [] : elements.map { (key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    /// The first value for `key` (ASCII case-insensitive); setting replaces every value for it.
    public subscript(_ key: String) -> String? {
        get { pairs.first { Self.sameKey($0.key, key) }?.value }
        set {
            pairs.removeAll { Self.sameKey($0.key, key) }
            if let newValue { pairs.append((key: key, value: newValue)) }
        }
    }

    /// ASCII case-insensitive, byte-wise comparison, without allocating.
    static func sameKey(_ a: String, _ b: String) -> Bool {
        var i = a.utf8.makeIterator()
        var j = b.utf8.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                let lx = (x >= 65 && x <= 90) ? x + 32 : x
                let ly = (y >= 65 && y <= 90) ? y + 32 : y
                if lx != ly { return false }
            default: return false
            }
        }
    }

    public mutating func append(_ key: String, _ value: String) { pairs.append((key: key, value: value)) }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    /// count u16, then per pair: key (u16 length + UTF-8), value (u16 length + UTF-8).
    public var encodedSize: Int {
        pairs.prefix(Int(UInt16.max)).reduce(2) { $0 + ByteWriter.size16($1.key) + ByteWriter.size16($1.value) }
    }

    /// Writes at most 65,535 pairs (the rest are dropped; callers check ``isEncodable`` first).
    public func encode(_ w: inout ByteWriter) {
        let n = Swift.min(pairs.count, Int(UInt16.max))
        w.u16(UInt16(n))
        for p in pairs.prefix(n) {
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
