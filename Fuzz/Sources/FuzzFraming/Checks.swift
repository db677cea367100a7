import MicroCore
import MicroFraming

/// The largest payload the accumulator accepts in this harness.
let maxPayload = 1 << 20

/// Input layout: byte 0 is the control byte, the rest is the byte stream.
///
/// control bits 0-5: chunk size of each read (0: the whole stream in one read, n: n bytes per read);
/// bit 6: plain length-prefixed mode (4-byte header) instead of the multiplexed protocol (10-byte header);
/// bit 7: after each read, read the rest of an incomplete frame through `directReadBuffer(minimum: 1)`, as a
/// connection does for large frames.
///
/// Oracle: the frames the accumulator hands out must be exactly those a trivial reference parser finds in the
/// whole stream, in order, and it must throw FRAME_SIZE_ERROR exactly when the stream holds a complete header
/// whose length exceeds `maxPayload`. The memory it reserves follows the bytes that arrived, whatever length a
/// header announces: at most 4 x the buffered bytes plus `initialReservation` (2 x that when nothing is buffered). Every multiplexed frame goes through `Frame.decode`; decoded frames are
/// re-encoded and decoded again, and must come back equal (byte-exact where the encoding is canonical).
func checkStream(_ input: UnsafeRawBufferPointer) {
    guard let control = input.first else { return }
    let stream = UnsafeRawBufferPointer(rebasing: input[1...])
    let chunk = Int(control & 0x3F)
    let plain = control & 0x40 != 0
    let direct = control & 0x80 != 0
    let headerSize = plain ? 4 : FrameHeader.size

    let (expected, expectError) = referenceFrames(stream, headerSize: headerSize)

    var accumulator = FrameAccumulator(headerSize: headerSize, maxPayload: maxPayload)
    var got: [[UInt8]] = []
    var thrown: FramingError?
    let onFrame: (UnsafeRawBufferPointer) -> Bool = { frame in
        got.append(Array(frame))
        return true
    }
    var offset = 0
    let total = stream.count
    while offset < total, thrown == nil {
        let n = chunk == 0 ? total - offset : min(chunk, total - offset)
        do throws(FramingError) {
            try accumulator.feed(UnsafeRawBufferPointer(rebasing: stream[offset..<(offset + n)]), onFrame)
        } catch {
            thrown = error
        }
        offset += n
        checkReservation(accumulator)
        if direct, thrown == nil, offset < total, let region = accumulator.directReadBuffer(minimum: 1) {
            precondition(region.count >= 1)
            let m = min(region.count, total - offset, chunk == 0 ? Int.max : chunk)
            region.baseAddress!.copyMemory(from: stream.baseAddress! + offset, byteCount: m)
            accumulator.commitDirectRead(m, onFrame)
            offset += m
            checkReservation(accumulator)
        }
    }

    if expectError {
        guard let thrown else { fatalError("accumulator accepted a frame longer than maxPayload") }
        precondition(thrown.code == .frameSizeError, "unexpected error \(thrown)")
    } else if let thrown {
        fatalError("accumulator threw \(thrown) on a valid stream")
    }
    precondition(got.count == expected.count, "accumulator handed out \(got.count) frames, expected \(expected.count)")
    for (a, b) in zip(got, expected) {
        precondition(a == b, "accumulator handed out a different frame")
    }
    if thrown == nil {
        let buffered = total - expected.reduce(0) { $0 + $1.count }
        precondition(accumulator.bufferedByteCount == buffered, "accumulator buffers \(accumulator.bufferedByteCount) bytes, expected \(buffered)")
    }

    if !plain {
        for frame in got {
            frame.withUnsafeBytes { checkFrame($0) }
        }
    }
}

/// The accumulator's reservation is bounded by the bytes it holds, never by an announced frame length.
func checkReservation(_ accumulator: borrowing FrameAccumulator) {
    let limit = max(2 * FrameAccumulator.initialReservation, 4 * accumulator.bufferedByteCount + FrameAccumulator.initialReservation)
    precondition(accumulator.reservedByteCount <= limit,
                 "reserved \(accumulator.reservedByteCount) bytes for \(accumulator.bufferedByteCount) buffered")
}

/// The frames a trivial parser finds in the whole stream, and whether an oversized header is complete in it.
func referenceFrames(_ s: UnsafeRawBufferPointer, headerSize: Int) -> ([[UInt8]], Bool) {
    var frames: [[UInt8]] = []
    var i = 0
    while s.count - i >= headerSize {
        let length = Int(s[i]) << 24 | Int(s[i + 1]) << 16 | Int(s[i + 2]) << 8 | Int(s[i + 3])
        if length > maxPayload { return (frames, true) }
        if s.count - i < headerSize + length { break }
        frames.append(Array(s[i..<(i + headerSize + length)]))
        i += headerSize + length
    }
    return (frames, false)
}

/// Decodes one frame; when it decodes, re-encodes it and checks the round trip.
func checkFrame(_ frame: UnsafeRawBufferPointer) {
    let decoded: Frame?
    do throws(FramingError) {
        decoded = try Frame.decode(frame)
    } catch {
        precondition(!error.reason.isEmpty)
        return
    }
    guard let decoded else {
        // Unknown type: ignored.
        precondition(FrameType(rawValue: frame[4]) == nil, "a known frame type decoded to nil")
        return
    }
    let payload = UnsafeRawBufferPointer(rebasing: frame[FrameHeader.size...])
    let streamID = FrameHeader.read(from: frame.baseAddress!).streamID

    switch decoded {
    case .settings(let ack, let p):
        precondition(streamID == 0 && p.count == payload.count)
        if ack { precondition(p.isEmpty) }
        if let s = try? Settings().applying(p) { checkSettings(s) }

    case .request(let stream, let head, let message, let endStream):
        let size = FrameEncoder.requestSize(head, messageCount: message?.count)
        let bytes = encode(size) { FrameEncoder.encodeRequest(stream: stream, head, message: message, endStream: endStream, into: $0) }
        redecode(bytes) { f in
            guard case .request(let s2, let h2, let m2, let e2) = f else { fatalError("REQUEST did not come back") }
            precondition(s2 == stream && h2 == head && e2 == endStream && same(m2, message), "REQUEST round trip differs")
        }
        precondition(bytes[FrameHeader.size...].elementsEqual(payload), "REQUEST payload not byte-exact")

    case .response(let stream, let head, let message, let endStream):
        let size = FrameEncoder.responseSize(head, messageCount: message?.count)
        let bytes = encode(size) { FrameEncoder.encodeResponse(stream: stream, head, message: message, endStream: endStream, into: $0) }
        redecode(bytes) { f in
            guard case .response(let s2, let h2, let m2, let e2) = f else { fatalError("RESPONSE did not come back") }
            precondition(s2 == stream && h2 == head && e2 == endStream && same(m2, message), "RESPONSE round trip differs")
        }
        if canonicalStatus(payload) {
            precondition(bytes[FrameHeader.size...].elementsEqual(payload), "RESPONSE payload not byte-exact")
        }

    case .data(let stream, let message, let endStream):
        let bytes = encode(FrameEncoder.dataSize(messageCount: message.count)) {
            FrameEncoder.encodeData(stream: stream, message: message, endStream: endStream, into: $0)
        }
        redecode(bytes) { f in
            guard case .data(let s2, let m2, let e2) = f else { fatalError("DATA did not come back") }
            precondition(s2 == stream && e2 == endStream && m2.elementsEqual(message), "DATA round trip differs")
        }

    case .end(let stream, let head):
        let bytes = encode(FrameEncoder.endSize(head)) { FrameEncoder.encodeEnd(stream: stream, head, into: $0) }
        redecode(bytes) { f in
            guard case .end(let s2, let h2) = f else { fatalError("END did not come back") }
            precondition(s2 == stream && h2 == head, "END round trip differs")
        }
        if head == nil || canonicalStatus(payload) {
            precondition(bytes[FrameHeader.size...].elementsEqual(payload), "END payload not byte-exact")
        }

    case .cancel(let stream, let code, let reason):
        let bytes = encode(FrameEncoder.cancelSize(reason: reason)) { FrameEncoder.encodeCancel(stream: stream, code: code, reason: reason, into: $0) }
        redecode(bytes) { f in
            guard case .cancel(let s2, let c2, let r2) = f else { fatalError("CANCEL did not come back") }
            precondition(s2 == stream && c2 == code && r2 == reason, "CANCEL round trip differs")
        }
        precondition(bytes[FrameHeader.size...].elementsEqual(payload), "CANCEL payload not byte-exact")

    case .window(let stream, let increment):
        precondition(increment >= 1 && increment <= UInt32(Int32.max))
        let bytes = encode(FrameEncoder.windowSize) { FrameEncoder.encodeWindow(stream: stream, increment: increment, into: $0) }
        redecode(bytes) { f in
            guard case .window(let s2, let i2) = f else { fatalError("WINDOW did not come back") }
            precondition(s2 == stream && i2 == increment, "WINDOW round trip differs")
        }

    case .ping(let ack, let opaque):
        let bytes = encode(FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: ack, opaque: opaque, into: $0) }
        redecode(bytes) { f in
            guard case .ping(let a2, let o2) = f else { fatalError("PING did not come back") }
            precondition(a2 == ack && o2 == opaque, "PING round trip differs")
        }
        precondition(bytes[FrameHeader.size...].elementsEqual(payload), "PING payload not byte-exact")

    case .drain(let last, let code, let reason):
        let bytes = encode(FrameEncoder.drainSize(reason: reason)) { FrameEncoder.encodeDrain(lastStream: last, code: code, reason: reason, into: $0) }
        redecode(bytes) { f in
            guard case .drain(let l2, let c2, let r2) = f else { fatalError("DRAIN did not come back") }
            precondition(l2 == last && c2 == code && r2 == reason, "DRAIN round trip differs")
        }
        precondition(bytes[FrameHeader.size...].elementsEqual(payload), "DRAIN payload not byte-exact")
    }
}

/// Encoded settings must apply back to the same values, and stay within their documented ranges.
func checkSettings(_ s: Settings) {
    precondition(s.maxFrameSize >= Settings.minFrameSize && s.maxFrameSize <= Settings.maxFrameSizeLimit)
    precondition(s.initialWindow <= UInt32(Int32.max))
    precondition(s.protocolVersion == 1)
    let bytes = encode(s.encodedSize) { s.encode(into: $0) }
    let back = bytes.withUnsafeBytes { try? Settings().applying($0) }
    precondition(back == s, "SETTINGS round trip differs")
}

/// Runs an encoder into a buffer of exactly the size its `…Size` function gave (ASan catches an overrun)
/// and checks it wrote exactly that many bytes.
func encode(_ size: Int, _ body: (UnsafeMutableRawPointer) -> Int) -> [UInt8] {
    let p = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 1)
    defer { p.deallocate() }
    let n = body(p)
    precondition(n == size, "encoder wrote \(n) bytes, its size function said \(size)")
    return Array(UnsafeRawBufferPointer(start: p, count: n))
}

/// Decodes bytes the encoder produced: they must decode (the header's length must match, too). The frame's
/// slices are valid only inside `body`.
func redecode(_ bytes: [UInt8], _ body: (Frame) -> Void) {
    bytes.withUnsafeBytes { b in
        let h = FrameHeader.read(from: b.baseAddress!)
        precondition(Int(h.length) == b.count - FrameHeader.size, "encoded header length is wrong")
        do throws(FramingError) {
            guard let f = try Frame.decode(b) else { fatalError("a re-encoded frame has an unknown type") }
            body(f)
        } catch {
            fatalError("a re-encoded frame does not decode: \(error)")
        }
    }
}

/// Whether a RESPONSE/END payload starts with a status in canonical form: OK is sent with code 0 and an empty
/// message, but the decoder accepts (and drops) any code and message with kind OK.
func canonicalStatus(_ payload: UnsafeRawBufferPointer) -> Bool {
    payload.count >= 7 && (payload[0] != 0 || payload[1..<7].allSatisfy { $0 == 0 })
}

func same(_ a: UnsafeRawBufferPointer?, _ b: UnsafeRawBufferPointer?) -> Bool {
    switch (a, b) {
    case (nil, nil): true
    case (let a?, let b?): a.elementsEqual(b)
    default: false
    }
}
