/// Remembers recently decoded strings, so that the names every request repeats (service, endpoint, content type)
/// are decoded without allocating and without validating them again.
///
/// A small table with round-robin replacement. A lookup compares the length and the first eight bytes of each
/// entry before comparing all bytes; it never hashes. Not thread-safe: keep one per decoding thread (the transport
/// keeps one per event loop).
///
/// The table starts with ``wellKnown``, kept for good: those come back as string literals, which are immortal, so
/// copying a head that carries one (as every call's content type does) costs no reference counting.
public struct StringInterner {
    /// Strings above this many bytes are not remembered (names are short; a long one would only evict others).
    public static let maxLength = 256

    /// Names seeded into every interner: the content types of the stock codecs.
    public static let wellKnown: [String] = ["application/octet-stream", "application/json", "application/protobuf"]

    struct Entry {
        var count: Int
        /// The first (up to) eight bytes, zero-padded: a cheap first comparison.
        var prefix: UInt64
        var bytes: [UInt8]
        var string: String
    }

    private var entries: [Entry] = []
    /// Entries below this index (the well-known ones) are never replaced.
    private var pinned = 0
    private var nextSlot = 0
    /// Where the last lookup of each kind of name (see ``string(_:kind:)``) hit: where the next one starts.
    private var lastHits: (Int, Int, Int, Int) = (0, 0, 0, 0)
    public let capacity: Int

    /// A capacity of 0 remembers nothing (plain decoding); otherwise ``wellKnown`` comes on top of `capacity`.
    public init(capacity: Int = 32) {
        self.capacity = max(0, capacity)
        guard capacity > 0 else { return }
        for name in Self.wellKnown {
            var name = name
            let bytes = Array(name.withUTF8 { $0 })
            entries.append(Entry(count: bytes.count, prefix: bytes.withUnsafeBytes { Self.prefix($0) }, bytes: bytes, string: name))
        }
        pinned = entries.count
        nextSlot = pinned
    }

    /// The string for `bytes`, or nil when they are not valid UTF-8. `kind` (0–3) names the field the bytes
    /// come from (service, endpoint, content type, ...): each kind starts where its last lookup hit, so the names
    /// a connection repeats are found at the first comparison.
    public mutating func string(_ bytes: UnsafeRawBufferPointer, kind: Int = 0) -> String? {
        if bytes.isEmpty { return "" }
        // The name this field had last time, first and alone: a connection repeats its names, and this costs one
        // comparison of the bytes (no prefix to build, no scan).
        let last = lastHit(kind)
        if last < entries.count {
            let same = entries.withUnsafeBufferPointer { table in
                table[last].count == bytes.count && table[last].bytes.withUnsafeBytes { equalBytes($0, bytes) }
            }
            if same { return entries[last].string }
        }
        guard capacity > 0, bytes.count <= Self.maxLength else { return Self.decode(bytes) }
        let prefix = Self.prefix(bytes)
        let n = entries.count
        if n > 0 {
            // Fields are read in place: copying an entry would retain and release its bytes and string.
            let start = lastHit(kind)
            let hit: Int? = entries.withUnsafeBufferPointer { table in
                var i = start < n ? start : 0
                for _ in 0..<n {
                    if table[i].count == bytes.count && table[i].prefix == prefix
                        && (bytes.count <= 8 || table[i].bytes.withUnsafeBytes { equalBytes($0, bytes) }) {
                        return i
                    }
                    i += 1
                    if i == n { i = 0 }
                }
                return nil
            }
            if let hit {
                setLastHit(kind, hit)
                return entries[hit].string
            }
        }
        guard let s = Self.decode(bytes) else { return nil }
        let entry = Entry(count: bytes.count, prefix: prefix, bytes: Array(bytes), string: s)
        if entries.count < pinned + capacity {
            entries.append(entry)
            setLastHit(kind, entries.count - 1)
        } else {
            entries[nextSlot] = entry
            setLastHit(kind, nextSlot)
            nextSlot = nextSlot + 1 == entries.count ? pinned : nextSlot + 1
        }
        return s
    }

    private func lastHit(_ kind: Int) -> Int {
        switch kind & 3 {
        case 0: lastHits.0
        case 1: lastHits.1
        case 2: lastHits.2
        default: lastHits.3
        }
    }

    private mutating func setLastHit(_ kind: Int, _ index: Int) {
        switch kind & 3 {
        case 0: lastHits.0 = index
        case 1: lastHits.1 = index
        case 2: lastHits.2 = index
        default: lastHits.3 = index
        }
    }

    /// Validating UTF-8 decoding, with a fast path for ASCII (what names almost always are).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> String? {
        if bytes.isEmpty { return "" }
        var i = 0
        let n = bytes.count
        var ascii = true
        while i + 8 <= n {
            if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { ascii = false; break }
            i += 8
        }
        if ascii {
            while i < n {
                if bytes[i] >= 0x80 { ascii = false; break }
                i += 1
            }
        }
        if ascii {
            return String(unsafeUninitializedCapacity: n) { buffer in
                _ = buffer.initialize(from: bytes)
                return n
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    @inline(__always)
    static func prefix(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        if bytes.count >= 8 { return bytes.loadUnaligned(as: UInt64.self) }
        var p: UInt64 = 0
        withUnsafeMutableBytes(of: &p) { dst in
            dst.copyMemory(from: bytes)
        }
        return p
    }
}

@inline(__always)
private func equalBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var i = 0
    let n = a.count
    // Eight bytes at a time, then the tail.
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
