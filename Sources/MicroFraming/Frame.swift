public import MicroCore
/// A decoded frame of the multiplexed protocol. Payload slices point into the buffer that was decoded and
/// are valid only as long as it is.
public enum Frame {
    case settings(ack: Bool, payload: UnsafeRawBufferPointer)
    case request(stream: UInt32, head: RequestHead, message: UnsafeRawBufferPointer?, endStream: Bool)
    case response(stream: UInt32, head: ResponseHead, message: UnsafeRawBufferPointer?, endStream: Bool)
    case data(stream: UInt32, message: UnsafeRawBufferPointer, endStream: Bool)
    /// Ends the sender's direction. From a server it carries the final status (trailers); from a client none.
    case end(stream: UInt32, head: ResponseHead?)
    case cancel(stream: UInt32, code: ErrorCode, reason: String)
    case window(stream: UInt32, increment: UInt32)
    case ping(ack: Bool, opaque: UInt64)
    case drain(lastStream: UInt32, code: ErrorCode, reason: String)

    /// Decodes one complete frame (header + payload, as ``FrameAccumulator`` hands it out).
    /// Returns nil for a frame type this version does not know: such frames are ignored (§4).
    public static func decode(_ frame: UnsafeRawBufferPointer) throws(FramingError) -> Frame? {
        var interner = StringInterner(capacity: 0)
        return try decode(frame, interner: &interner)
    }

    /// Decodes one complete frame, taking the names of a REQUEST head from `interner` when seen recently.
    public static func decode(_ frame: UnsafeRawBufferPointer, interner: inout StringInterner) throws(FramingError) -> Frame? {
        precondition(frame.count >= FrameHeader.size)
        let h = FrameHeader.read(from: frame.baseAddress!)
        let payload = UnsafeRawBufferPointer(rebasing: frame[FrameHeader.size...])
        guard let type = FrameType(rawValue: h.type) else { return nil }
        let flags = FrameFlags(rawValue: h.flags)
        let stream = h.streamID
        func requireStream(_ zero: Bool) throws(FramingError) {
            if zero && stream != 0 { throw FramingError(.protocolError, "\(type) frame on stream \(stream), must be 0") }
            if !zero && stream == 0 { throw FramingError(.protocolError, "\(type) frame on stream 0") }
        }
        var r = ByteReader(payload)
        switch type {
        case .settings:
            try requireStream(true)
            if flags.contains(.ack) && payload.count != 0 { throw FramingError(.frameSizeError, "SETTINGS ack with a payload") }
            return .settings(ack: flags.contains(.ack), payload: payload)
        case .request:
            try requireStream(false)
            let head = try RequestHead.decode(&r, interner: &interner)
            return .request(stream: stream, head: head, message: try message(r, flags, type),
                            endStream: flags.contains(.endStream))
        case .response:
            try requireStream(false)
            let head = try ResponseHead.decode(&r)
            return .response(stream: stream, head: head, message: try message(r, flags, type),
                             endStream: flags.contains(.endStream))
        case .data:
            try requireStream(false)
            return .data(stream: stream, message: payload, endStream: flags.contains(.endStream))
        case .end:
            try requireStream(false)
            if payload.isEmpty { return .end(stream: stream, head: nil) }
            let head = try ResponseHead.decode(&r)
            try trailing(r, type)
            return .end(stream: stream, head: head)
        case .cancel:
            try requireStream(false)
            let code = try r.u32("cancel code")
            let reason = try r.string16("cancel reason")
            try trailing(r, type)
            return .cancel(stream: stream, code: ErrorCode(rawValue: code), reason: reason)
        case .window:
            let inc = try r.u32("window increment")
            try trailing(r, type)
            if inc == 0 || inc > UInt32(Int32.max) { throw FramingError(.flowControlError, "WINDOW increment \(inc) outside 1...2^31-1") }
            return .window(stream: stream, increment: inc)
        case .ping:
            try requireStream(true)
            guard payload.count == 8 else { throw FramingError(.frameSizeError, "PING payload of \(payload.count) bytes, must be 8") }
            return .ping(ack: flags.contains(.ack), opaque: try r.u64("ping"))
        case .drain:
            try requireStream(true)
            let last = try r.u32("drain last stream")
            let code = try r.u32("drain code")
            let reason = try r.string16("drain reason")
            try trailing(r, type)
            return .drain(lastStream: last, code: ErrorCode(rawValue: code), reason: reason)
        }
    }

    private static func message(_ r: ByteReader, _ flags: FrameFlags, _ type: FrameType) throws(FramingError) -> UnsafeRawBufferPointer? {
        if flags.contains(.hasMessage) { return r.rest() }
        try trailing(r, type)
        return nil
    }

    private static func trailing(_ r: ByteReader, _ type: FrameType) throws(FramingError) {
        if r.remaining != 0 { throw FramingError(.protocolError, "\(r.remaining) unexpected bytes after \(type) payload") }
    }
}

/// Encodes whole frames (header + payload) into memory the caller reserved. Each `…Size` function gives the
/// exact number of bytes the matching `encode…` writes.
public enum FrameEncoder {
    @inline(__always)
    static func header(_ p: UnsafeMutableRawPointer, _ payload: Int, _ type: FrameType, _ flags: FrameFlags, _ stream: UInt32) {
        FrameHeader(length: UInt32(payload), type: type, flags: flags, streamID: stream).write(to: p)
    }

    public static func settingsSize(_ s: Settings) -> Int { FrameHeader.size + s.encodedSize }
    public static func encodeSettings(_ s: Settings, into p: UnsafeMutableRawPointer) -> Int {
        let n = s.encode(into: p + FrameHeader.size)
        header(p, n, .settings, [], 0)
        return FrameHeader.size + n
    }
    public static let settingsAckSize = FrameHeader.size
    public static func encodeSettingsAck(into p: UnsafeMutableRawPointer) -> Int {
        header(p, 0, .settings, .ack, 0)
        return FrameHeader.size
    }

    public static func requestSize(_ head: RequestHead, messageCount: Int?) -> Int {
        FrameHeader.size + head.encodedSize + (messageCount ?? 0)
    }
    public static func encodeRequest(stream: UInt32, _ head: RequestHead, message: UnsafeRawBufferPointer?, endStream: Bool,
                                     into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p + FrameHeader.size)
        head.encode(&w)
        var flags: FrameFlags = endStream ? .endStream : []
        if let message { w.bytes(message); flags.insert(.hasMessage) }
        header(p, w.offset, .request, flags, stream)
        return FrameHeader.size + w.offset
    }

    public static func responseSize(_ head: ResponseHead, messageCount: Int?) -> Int {
        FrameHeader.size + head.encodedSize + (messageCount ?? 0)
    }
    public static func encodeResponse(stream: UInt32, _ head: ResponseHead, message: UnsafeRawBufferPointer?, endStream: Bool,
                                      into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p + FrameHeader.size)
        head.encode(&w)
        var flags: FrameFlags = endStream ? .endStream : []
        if let message { w.bytes(message); flags.insert(.hasMessage) }
        header(p, w.offset, .response, flags, stream)
        return FrameHeader.size + w.offset
    }

    public static func dataSize(messageCount: Int) -> Int { FrameHeader.size + messageCount }
    public static func encodeData(stream: UInt32, message: UnsafeRawBufferPointer, endStream: Bool, into p: UnsafeMutableRawPointer) -> Int {
        if message.count > 0 { (p + FrameHeader.size).copyMemory(from: message.baseAddress!, byteCount: message.count) }
        header(p, message.count, .data, endStream ? .endStream : [], stream)
        return FrameHeader.size + message.count
    }

    public static func endSize(_ head: ResponseHead?) -> Int { FrameHeader.size + (head?.encodedSize ?? 0) }
    public static func encodeEnd(stream: UInt32, _ head: ResponseHead?, into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p + FrameHeader.size)
        head?.encode(&w)
        header(p, w.offset, .end, [], stream)
        return FrameHeader.size + w.offset
    }

    public static func cancelSize(reason: String) -> Int { FrameHeader.size + 4 + ByteWriter.size16(reason) }
    public static func encodeCancel(stream: UInt32, code: ErrorCode, reason: String, into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p + FrameHeader.size)
        w.u32(code.rawValue)
        w.string16(reason)
        header(p, w.offset, .cancel, [], stream)
        return FrameHeader.size + w.offset
    }

    public static let windowSize = FrameHeader.size + 4
    public static func encodeWindow(stream: UInt32, increment: UInt32, into p: UnsafeMutableRawPointer) -> Int {
        p.storeBytes(of: increment.bigEndian, toByteOffset: FrameHeader.size, as: UInt32.self)
        header(p, 4, .window, [], stream)
        return windowSize
    }

    public static let pingSize = FrameHeader.size + 8
    public static func encodePing(ack: Bool, opaque: UInt64, into p: UnsafeMutableRawPointer) -> Int {
        (p + FrameHeader.size).storeBytes(of: opaque.bigEndian, as: UInt64.self)
        header(p, 8, .ping, ack ? .ack : [], 0)
        return pingSize
    }

    public static func drainSize(reason: String) -> Int { FrameHeader.size + 8 + ByteWriter.size16(reason) }
    public static func encodeDrain(lastStream: UInt32, code: ErrorCode, reason: String, into p: UnsafeMutableRawPointer) -> Int {
        var w = ByteWriter(p + FrameHeader.size)
        w.u32(lastStream)
        w.u32(code.rawValue)
        w.string16(reason)
        header(p, w.offset, .drain, [], 0)
        return FrameHeader.size + w.offset
    }
}
