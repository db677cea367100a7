import MicroCore
import MicroFraming

/// Applies the input as a SETTINGS payload on top of the defaults, and decodes SETTINGS frames built around it
/// (plain, with the ACK flag, and on a non-zero stream).
///
/// Oracle: a payload that applies yields values within their documented ranges that encode and apply back to
/// the same values; errors carry the codes of docs/PROTOCOL.md §5; `Frame.decode` accepts the plain frame
/// whatever the payload, rejects an ACK with a payload (FRAME_SIZE_ERROR) and any SETTINGS on a stream other
/// than 0 (PROTOCOL_ERROR).
func checkSettingsPayload(_ payload: UnsafeRawBufferPointer) {
    do throws(FramingError) {
        let s = try Settings().applying(payload)
        precondition(payload.count % 6 == 0)
        precondition(s.maxFrameSize >= Settings.minFrameSize && s.maxFrameSize <= Settings.maxFrameSizeLimit)
        precondition(s.initialWindow <= UInt32(Int32.max))
        precondition(s.protocolVersion == 1)
        let encoded = frameBytes(flags: 0, stream: 0, payloadSize: s.encodedSize) { s.encode(into: $0) }
        encoded.withUnsafeBytes { b in
            let again = try? Settings().applying(UnsafeRawBufferPointer(rebasing: b[FrameHeader.size...]))
            precondition(again == s, "SETTINGS round trip differs")
            // Applying the encoded form on top of anything gives the same values: every setting is sent.
            var other = Settings()
            other.maxFrameSize = Settings.maxFrameSizeLimit
            other.maxConcurrentStreams = 1
            other.initialWindow = 0
            precondition((try? other.applying(UnsafeRawBufferPointer(rebasing: b[FrameHeader.size...]))) == s)
        }
    } catch {
        precondition([ErrorCode.frameSizeError, .protocolError, .flowControlError].contains(error.code), "unexpected \(error)")
        if error.code == .frameSizeError { precondition(payload.count % 6 != 0) }
    }

    let count = payload.count
    let copy: (UnsafeMutableRawPointer) -> Int = { p in
        if count > 0 { p.copyMemory(from: payload.baseAddress!, byteCount: count) }
        return count
    }
    frameBytes(flags: 0, stream: 0, payloadSize: count, copy).withUnsafeBytes { b in
        do throws(FramingError) {
            guard case .settings(let ack, let p)? = try Frame.decode(b) else { fatalError("SETTINGS decoded as something else") }
            precondition(!ack && p.elementsEqual(payload))
        } catch {
            fatalError("SETTINGS frame rejected: \(error)")
        }
    }
    frameBytes(flags: 0x1, stream: 0, payloadSize: count, copy).withUnsafeBytes { b in
        do throws(FramingError) {
            guard case .settings(let ack, let p)? = try Frame.decode(b) else { fatalError("SETTINGS decoded as something else") }
            precondition(ack && p.isEmpty && count == 0)
        } catch {
            precondition(error.code == .frameSizeError && count > 0, "unexpected \(error)")
        }
    }
    let stream = count >= 4 ? UInt32(payload[0]) << 24 | UInt32(payload[1]) << 16 | UInt32(payload[2]) << 8 | UInt32(payload[3]) | 1 : 1
    frameBytes(flags: 0, stream: stream, payloadSize: count, copy).withUnsafeBytes { b in
        do throws(FramingError) {
            _ = try Frame.decode(b)
            fatalError("SETTINGS on stream \(stream) accepted")
        } catch {
            precondition(error.code == .protocolError, "unexpected \(error)")
        }
    }
}

/// A SETTINGS frame: header written by hand (as a peer would), payload written by `body`.
func frameBytes(flags: UInt8, stream: UInt32, payloadSize: Int, _ body: (UnsafeMutableRawPointer) -> Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: FrameHeader.size + payloadSize) { buffer, initialized in
        let p = UnsafeMutableRawPointer(buffer.baseAddress!)
        let n = body(p + FrameHeader.size)
        precondition(n == payloadSize, "encoder wrote \(n) bytes, expected \(payloadSize)")
        let header: [UInt8] = [
            UInt8(truncatingIfNeeded: n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n),
            0x0, flags,
            UInt8(truncatingIfNeeded: stream >> 24), UInt8(truncatingIfNeeded: stream >> 16), UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream),
        ]
        header.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: FrameHeader.size) }
        initialized = FrameHeader.size + n
    }
}
