public import MicroCore

/// The wire form of metadata (docs/PROTOCOL.md §6.1).
extension Metadata {
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
