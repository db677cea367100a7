/// The fixed 10-byte header in front of every frame of the multiplexed protocol (docs/PROTOCOL.md §3):
///
/// ```
/// 0               4      5      6               10
/// +---------------+------+------+---------------+
/// | length (u32)  | type |flags | stream (u32)  |  then `length` payload bytes
/// +---------------+------+------+---------------+
/// ```
/// All integers are big-endian. `length` counts the payload only.
public struct FrameHeader: Equatable, Sendable {
    public static let size = 10

    public var length: UInt32
    public var type: FrameType
    public var flags: FrameFlags
    public var streamID: UInt32

    @inlinable
    public init(length: UInt32, type: FrameType, flags: FrameFlags = [], streamID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.streamID = streamID
    }

    /// Writes the header at `p` (10 bytes).
    @inlinable
    public func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: length.bigEndian, toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: type.rawValue, toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: flags.rawValue, toByteOffset: 5, as: UInt8.self)
        p.storeBytes(of: streamID.bigEndian, toByteOffset: 6, as: UInt32.self)
    }

    /// Reads a header from `p` (at least 10 readable bytes). The type byte is not validated here.
    @inlinable
    public static func read(from p: UnsafeRawPointer) -> (length: UInt32, type: UInt8, flags: UInt8, streamID: UInt32) {
        (
            UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
            p.load(fromByteOffset: 4, as: UInt8.self),
            p.load(fromByteOffset: 5, as: UInt8.self),
            UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 6, as: UInt32.self))
        )
    }
}

/// Frame types (docs/PROTOCOL.md §4).
public enum FrameType: UInt8, Sendable, CaseIterable {
    case settings = 0x0
    case request = 0x1
    case response = 0x2
    case data = 0x3
    case end = 0x4
    case cancel = 0x5
    case window = 0x6
    case ping = 0x7
    case drain = 0x8
}

/// Frame flags. Bits a frame type does not define must be sent as 0 and are ignored on receipt.
public struct FrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// SETTINGS, PING: this frame acknowledges the peer's.
    public static let ack = FrameFlags(rawValue: 0x1)
    /// REQUEST, RESPONSE, DATA: the sender sends nothing more on this stream.
    public static let endStream = FrameFlags(rawValue: 0x1)
    /// REQUEST, RESPONSE: a message follows the header block in the payload.
    public static let hasMessage = FrameFlags(rawValue: 0x2)
}

/// The 8 bytes a client sends before anything else: "MICRO/1\n".
public enum ConnectionPreface {
    public static let bytes: [UInt8] = Array("MICRO/1\n".utf8)
}
