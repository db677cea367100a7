/// The connection parameters each side announces in its first frame (docs/PROTOCOL.md §5).
/// Each value is a limit on what the *sender of the settings* accepts.
public struct Settings: Equatable, Sendable {
    public enum ID: UInt16, Sendable {
        case maxFrameSize = 1
        case maxConcurrentStreams = 2
        case initialWindow = 3
        case protocolVersion = 4
    }

    /// The largest frame payload this side accepts. 16 KiB to 64 MiB; default 4 MiB.
    public var maxFrameSize: UInt32 = 4 << 20
    /// How many streams the peer may have open towards this side at once. Default 4096.
    public var maxConcurrentStreams: UInt32 = 4096
    /// The initial send credit, in DATA payload bytes, for each new stream towards this side. Default 1 MiB.
    public var initialWindow: UInt32 = 1 << 20
    /// The protocol version spoken; this document describes 1.
    public var protocolVersion: UInt32 = 1

    public static let minFrameSize: UInt32 = 16 << 10
    public static let maxFrameSizeLimit: UInt32 = 64 << 20

    public init() {}

    /// SETTINGS payload: (id u16, value u32) pairs.
    public var encodedSize: Int { 4 * 6 }

    public func encode(into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p)
        for (id, v) in [(ID.maxFrameSize, maxFrameSize), (.maxConcurrentStreams, maxConcurrentStreams),
                        (.initialWindow, initialWindow), (.protocolVersion, protocolVersion)] {
            w.u16(id.rawValue)
            w.u32(v)
        }
        return w.offset
    }

    /// Applies a SETTINGS payload on top of `self` (unknown ids are ignored, as the protocol requires).
    public func applying(_ payload: UnsafeRawBufferPointer) throws(FramingError) -> Settings {
        guard payload.count % 6 == 0 else {
            throw FramingError(.frameSizeError, "SETTINGS payload of \(payload.count) bytes is not a multiple of 6")
        }
        var s = self
        var r = ByteReader(payload)
        while r.remaining > 0 {
            let id = try r.u16("setting id")
            let v = try r.u32("setting value")
            switch ID(rawValue: id) {
            case .maxFrameSize:
                guard v >= Self.minFrameSize && v <= Self.maxFrameSizeLimit else {
                    throw FramingError(.protocolError, "MAX_FRAME_SIZE \(v) outside \(Self.minFrameSize)...\(Self.maxFrameSizeLimit)")
                }
                s.maxFrameSize = v
            case .maxConcurrentStreams:
                s.maxConcurrentStreams = v
            case .initialWindow:
                guard v <= Int32.max else { throw FramingError(.flowControlError, "INITIAL_WINDOW \(v) above 2^31-1") }
                s.initialWindow = v
            case .protocolVersion:
                guard v == 1 else { throw FramingError(.protocolError, "unsupported protocol version \(v)") }
                s.protocolVersion = v
            case nil:
                continue
            }
        }
        return s
    }
}
