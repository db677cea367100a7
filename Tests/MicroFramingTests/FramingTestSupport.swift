import MicroCore
import MicroFraming
import Testing

/// A decoded frame whose payload slices are copied out of the decoded buffer, so it can outlive it
/// and be compared.
enum OwnedFrame: Equatable {
    case settings(ack: Bool, payload: [UInt8])
    case request(stream: UInt32, head: RequestHead, message: [UInt8]?, endStream: Bool)
    case response(stream: UInt32, head: ResponseHead, message: [UInt8]?, endStream: Bool)
    case data(stream: UInt32, message: [UInt8], endStream: Bool)
    case end(stream: UInt32, head: ResponseHead?)
    case cancel(stream: UInt32, code: ErrorCode, reason: String)
    case window(stream: UInt32, increment: UInt32)
    case ping(ack: Bool, opaque: UInt64)
    case drain(lastStream: UInt32, code: ErrorCode, reason: String)

    init(_ f: Frame) {
        switch f {
        case .settings(let ack, let p): self = .settings(ack: ack, payload: Array(p))
        case .request(let s, let h, let m, let e): self = .request(stream: s, head: h, message: m.map { Array($0) }, endStream: e)
        case .response(let s, let h, let m, let e): self = .response(stream: s, head: h, message: m.map { Array($0) }, endStream: e)
        case .data(let s, let m, let e): self = .data(stream: s, message: Array(m), endStream: e)
        case .end(let s, let h): self = .end(stream: s, head: h)
        case .cancel(let s, let c, let r): self = .cancel(stream: s, code: c, reason: r)
        case .window(let s, let i): self = .window(stream: s, increment: i)
        case .ping(let a, let o): self = .ping(ack: a, opaque: o)
        case .drain(let l, let c, let r): self = .drain(lastStream: l, code: c, reason: r)
        }
    }
}

/// Decodes one complete frame (header + payload) and copies it out.
func decode(_ bytes: [UInt8]) throws(FramingError) -> OwnedFrame? {
    let result: Result<OwnedFrame?, FramingError> = bytes.withUnsafeBytes { raw in
        do throws(FramingError) {
            return .success(try Frame.decode(raw).map(OwnedFrame.init))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}

/// Runs an encoder into a buffer of exactly `size` bytes followed by a guard zone, checks that it wrote
/// exactly `size` bytes, did not touch the guard zone, and that the header's length field matches; returns
/// the bytes.
func encoded(size: Int, sourceLocation: SourceLocation = #_sourceLocation,
             _ body: (UnsafeMutableRawPointer) -> Int) -> [UInt8] {
    let guardZone = 32
    var buffer = [UInt8](repeating: 0xA5, count: size + guardZone)
    let written = buffer.withUnsafeMutableBytes { body($0.baseAddress!) }
    #expect(written == size, "encoder wrote \(written) bytes, its size function said \(size)", sourceLocation: sourceLocation)
    #expect(buffer[size...].allSatisfy { $0 == 0xA5 }, "encoder wrote past the announced size", sourceLocation: sourceLocation)
    let bytes = Array(buffer[..<written])
    if bytes.count >= FrameHeader.size {
        let length = bytes.withUnsafeBytes { FrameHeader.read(from: $0.baseAddress!).length }
        #expect(Int(length) == written - FrameHeader.size, "header length field disagrees with bytes written",
                sourceLocation: sourceLocation)
    }
    return bytes
}

/// A raw frame of the multiplexed protocol with an arbitrary type byte, flags, stream and payload.
func rawFrame(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8] = []) -> [UInt8] {
    var out: [UInt8] = []
    out += be32(UInt32(payload.count))
    out.append(type)
    out.append(flags)
    out += be32(stream)
    out += payload
    return out
}

func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xFF)] }
func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(v & 0xFFFF_FFFF)) }
func str16(_ s: String) -> [UInt8] { be16(UInt16(s.utf8.count)) + Array(s.utf8) }

/// A frame for the accumulator: `headerSize` bytes of header (length first, then filler) and the payload.
func lengthPrefixed(_ payload: [UInt8], headerSize: Int, filler: UInt8 = 0x7E) -> [UInt8] {
    be32(UInt32(payload.count)) + [UInt8](repeating: filler, count: headerSize - 4) + payload
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
}
