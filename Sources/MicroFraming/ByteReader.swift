/// Bounds-checked big-endian reads from a payload. Every read past the end throws a protocol error.
public struct ByteReader {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    @inline(__always)
    private mutating func need(_ n: Int, _ what: StaticString) throws(FramingError) {
        if n > remaining { throw FramingError(.protocolError, "truncated \(what)") }
    }

    @inline(__always)
    public mutating func u8(_ what: StaticString) throws(FramingError) -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always)
    public mutating func u16(_ what: StaticString) throws(FramingError) -> UInt16 {
        try need(2, what)
        defer { offset += 2 }
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    public mutating func u32(_ what: StaticString) throws(FramingError) -> UInt32 {
        try need(4, what)
        defer { offset += 4 }
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    public mutating func u64(_ what: StaticString) throws(FramingError) -> UInt64 {
        try need(8, what)
        defer { offset += 8 }
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    public mutating func slice(_ n: Int, _ what: StaticString) throws(FramingError) -> UnsafeRawBufferPointer {
        try need(n, what)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    /// A UTF-8 string with a u16 length in front.
    public mutating func string16(_ what: StaticString) throws(FramingError) -> String {
        let n = Int(try u16(what))
        let s = try slice(n, what)
        guard let str = StringInterner.decode(s) else {
            throw FramingError(.protocolError, "\(what) is not valid UTF-8")
        }
        return str
    }

    /// A UTF-8 string with a u16 length in front, through `interner` (no allocation for a recently seen name);
    /// `kind` as in ``StringInterner/string(_:kind:)``.
    public mutating func string16(_ what: StaticString, interner: inout StringInterner, kind: Int = 0) throws(FramingError) -> String {
        let n = Int(try u16(what))
        let s = try slice(n, what)
        guard let str = interner.string(s, kind: kind) else {
            throw FramingError(.protocolError, "\(what) is not valid UTF-8")
        }
        return str
    }

    public func rest() -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[offset...]) }
}

/// Big-endian writes into memory the caller reserved; `offset` says how much was written.
public struct ByteWriter {
    public let base: UnsafeMutableRawPointer
    public var offset = 0

    @inlinable public init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inlinable public mutating func u8(_ v: UInt8) { base.storeBytes(of: v, toByteOffset: offset, as: UInt8.self); offset += 1 }
    @inlinable public mutating func u16(_ v: UInt16) { base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self); offset += 2 }
    @inlinable public mutating func u32(_ v: UInt32) { base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self); offset += 4 }
    @inlinable public mutating func u64(_ v: UInt64) { base.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self); offset += 8 }

    @inlinable public mutating func bytes(_ b: UnsafeRawBufferPointer) {
        if b.count > 0 { (base + offset).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        offset += b.count
    }

    @inlinable public mutating func bytes(_ b: [UInt8]) { b.withUnsafeBytes { bytes($0) } }

    /// Writes a u16-prefixed UTF-8 string. A string above 65,535 bytes is cut at the last whole character that
    /// fits (callers that must not lose bytes check ``fits16(_:)`` first); it never traps.
    public mutating func string16(_ s: String) {
        // Native strings give their bytes in place; only others are copied first.
        if s.utf8.withContiguousStorageIfAvailable({ write16($0) }) != nil { return }
        var s = s
        s.withUTF8 { write16($0) }
    }

    private mutating func write16(_ u: UnsafeBufferPointer<UInt8>) {
        let n = ByteWriter.clampedCount16(u)
        u16(UInt16(n))
        bytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(u)[0..<n]))
    }

    /// The encoded size of a u16-prefixed string (after clamping, as ``string16(_:)`` writes it).
    public static func size16(_ s: String) -> Int {
        let n = s.utf8.count
        if n <= Int(UInt16.max) { return 2 + n }
        var s = s
        return 2 + s.withUTF8 { clampedCount16($0) }
    }

    /// Whether `s` fits a u16 length without being cut.
    public static func fits16(_ s: String) -> Bool { s.utf8.count <= Int(UInt16.max) }

    static func clampedCount16(_ u: UnsafeBufferPointer<UInt8>) -> Int {
        var n = min(u.count, Int(UInt16.max))
        // Back up over continuation bytes (10xxxxxx) so the cut falls between characters.
        if n < u.count { while n > 0 && u[n] & 0xC0 == 0x80 { n -= 1 } }
        return n
    }
}
