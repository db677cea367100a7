/// Remembers recently decoded strings, so that the names every request repeats (service, endpoint, content type)
/// are decoded without allocating: a string above 15 UTF-8 bytes would otherwise cost one heap allocation per
/// request.
///
/// A small table with round-robin replacement: lookups compare bytes, never hash. Not thread-safe; keep one per
/// decoding thread (the transport keeps one per event loop).
public struct StringInterner {
    /// Strings up to this many bytes are stored inline by Swift and need no interning.
    static let inlineLimit = 15
    /// Strings above this many bytes are not remembered (names are short; a long one would only evict others).
    public static let maxLength = 256

    private var entries: [String] = []
    private var nextSlot = 0
    public let capacity: Int

    /// A capacity of 0 remembers nothing (plain decoding).
    public init(capacity: Int = 32) { self.capacity = max(0, capacity) }

    /// The string for `bytes` (valid UTF-8 required), from the table when it was seen recently.
    public mutating func string(_ bytes: UnsafeRawBufferPointer) -> String? {
        if capacity == 0 || bytes.count <= Self.inlineLimit || bytes.count > Self.maxLength {
            return String(validating: bytes, as: UTF8.self)
        }
        for i in entries.indices {
            let hit = entries[i].utf8.withContiguousStorageIfAvailable { e in
                e.count == bytes.count && memcmpEqual(UnsafeRawBufferPointer(e), bytes)
            } ?? false
            if hit { return entries[i] }
        }
        guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
        if entries.count < capacity {
            entries.append(s)
        } else {
            entries[nextSlot] = s
            nextSlot = (nextSlot + 1) % capacity
        }
        return s
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    if a.count == 0 { return true }
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
