import MicroCore
import MicroFraming
import Testing

private let richMetadata: Metadata = ["Trace-Id": "abc123", "x-user": "jösé 🚀", "empty": "", "dup": "1"]

private func request(stream: UInt32, _ head: RequestHead, message: [UInt8]?, endStream: Bool) -> [UInt8] {
    encoded(size: FrameEncoder.requestSize(head, messageCount: message?.count)) { p in
        if let message {
            return message.withUnsafeBytes { FrameEncoder.encodeRequest(stream: stream, head, message: $0, endStream: endStream, into: p) }
        }
        return FrameEncoder.encodeRequest(stream: stream, head, message: nil, endStream: endStream, into: p)
    }
}

private func response(stream: UInt32, _ head: ResponseHead, message: [UInt8]?, endStream: Bool) -> [UInt8] {
    encoded(size: FrameEncoder.responseSize(head, messageCount: message?.count)) { p in
        if let message {
            return message.withUnsafeBytes { FrameEncoder.encodeResponse(stream: stream, head, message: $0, endStream: endStream, into: p) }
        }
        return FrameEncoder.encodeResponse(stream: stream, head, message: nil, endStream: endStream, into: p)
    }
}

@Suite("Frame codec round trips")
struct FrameCodecTests {
    @Test("header layout: length, type, flags, stream, big-endian")
    func headerLayout() {
        var bytes = [UInt8](repeating: 0, count: FrameHeader.size)
        bytes.withUnsafeMutableBytes {
            FrameHeader(length: 0x0102_0304, type: .drain, flags: [.endStream, .hasMessage], streamID: 0x0A0B_0C0D)
                .write(to: $0.baseAddress!)
        }
        #expect(bytes == [1, 2, 3, 4, 8, 3, 0x0A, 0x0B, 0x0C, 0x0D])
        let h = bytes.withUnsafeBytes { FrameHeader.read(from: $0.baseAddress!) }
        #expect(h.length == 0x0102_0304 && h.type == 8 && h.flags == 3 && h.streamID == 0x0A0B_0C0D)
        #expect(FrameType.allCases.map(\.rawValue) == Array(0...8))
        #expect(ConnectionPreface.bytes == Array("MICRO/1\n".utf8))
    }

    @Test("SETTINGS and its ack")
    func settings() throws {
        var s = Settings()
        s.maxFrameSize = 1 << 20
        s.maxConcurrentStreams = 77
        s.initialWindow = 12345
        let bytes = encoded(size: FrameEncoder.settingsSize(s)) { FrameEncoder.encodeSettings(s, into: $0) }
        guard case .settings(let ack, let payload)? = try decode(bytes) else { Issue.record("not SETTINGS"); return }
        #expect(ack == false)
        #expect(payload.count == s.encodedSize)
        let applied = try payload.withUnsafeBytes { raw throws(FramingError) in try Settings().applying(raw) }
        #expect(applied == s)

        let ackBytes = encoded(size: FrameEncoder.settingsAckSize) { FrameEncoder.encodeSettingsAck(into: $0) }
        #expect(ackBytes.count == FrameHeader.size)
        #expect(try decode(ackBytes) == .settings(ack: true, payload: []))
    }

    @Test("REQUEST with and without a message, with and without END_STREAM",
          arguments: [(true, true), (true, false), (false, true), (false, false)])
    func requestRoundTrip(withMessage: Bool, endStream: Bool) throws {
        let head = RequestHead(service: "greeter.v1", endpoint: "Greeter.Hello", contentType: "application/json",
                               timeoutMicroseconds: 1_500_000, attempt: 3, metadata: richMetadata)
        let message: [UInt8]? = withMessage ? Array("{\"name\":\"x\"}".utf8) : nil
        let bytes = request(stream: 0x7FFF_FFFF, head, message: message, endStream: endStream)
        #expect(try decode(bytes) == .request(stream: 0x7FFF_FFFF, head: head, message: message, endStream: endStream))
    }

    @Test("REQUEST with an empty message differs from one without a message")
    func requestEmptyMessage() throws {
        let head = RequestHead(service: "s", endpoint: "e")
        #expect(head.contentType == "application/octet-stream" && head.timeoutMicroseconds == 0 && head.attempt == 1)
        let bytes = request(stream: 1, head, message: [], endStream: false)
        #expect(try decode(bytes) == .request(stream: 1, head: head, message: [], endStream: false))
        let none = request(stream: 1, head, message: nil, endStream: false)
        #expect(try decode(none) == .request(stream: 1, head: head, message: nil, endStream: false))
        #expect(bytes.count == none.count)
        #expect(bytes[5] != none[5], "the HAS_MESSAGE flag tells them apart")
    }

    @Test("REQUEST with extreme field values")
    func requestExtremes() throws {
        var md = Metadata()
        for i in 0..<300 { md.append("k\(i)", String(repeating: "v", count: i)) }
        let head = RequestHead(service: String(repeating: "s", count: 65535), endpoint: "", contentType: "",
                               timeoutMicroseconds: .max, attempt: .max, metadata: md)
        let message = [UInt8](repeating: 0xFE, count: 100_000)
        let bytes = request(stream: 1, head, message: message, endStream: true)
        #expect(try decode(bytes) == .request(stream: 1, head: head, message: message, endStream: true))
    }

    @Test("RESPONSE with every status kind and metadata", arguments: [
        Status.ok,
        Status.error(code: 13, message: "internal: boom"),
        Status.error(code: 0, message: ""),
        Status.nack(restartable: true, code: 503, message: "overloaded"),
        Status.nack(restartable: false, code: UInt32.max, message: "draining ⛔"),
    ])
    func responseRoundTrip(status: Status) throws {
        let head = ResponseHead(status: status, metadata: richMetadata)
        for message in [nil, [], Array("reply".utf8)] as [[UInt8]?] {
            for endStream in [false, true] {
                let bytes = response(stream: 5, head, message: message, endStream: endStream)
                #expect(try decode(bytes) == .response(stream: 5, head: head, message: message, endStream: endStream))
            }
        }
        // Without metadata.
        let bare = ResponseHead(status: status)
        #expect(bare.metadata.isEmpty)
        #expect(try decode(response(stream: 9, bare, message: nil, endStream: true))
                == .response(stream: 9, head: bare, message: nil, endStream: true))
    }

    @Test("the nack restartable bit survives the round trip")
    func nackRestartable() throws {
        for restartable in [true, false] {
            let bytes = response(stream: 3, ResponseHead(status: .nack(restartable: restartable, code: 1, message: "m")),
                                 message: nil, endStream: true)
            guard case .response(_, let head, _, _)? = try decode(bytes) else { Issue.record("not RESPONSE"); continue }
            guard case .nack(let r, let code, let m) = head.status else { Issue.record("not a nack"); continue }
            #expect(r == restartable && code == 1 && m == "m")
        }
    }

    @Test("DATA, empty and not, with and without END_STREAM")
    func dataRoundTrip() throws {
        var rng = TestRandom(seed: 5)
        for message in [[], [1], rng.bytes(70_000)] as [[UInt8]] {
            for endStream in [false, true] {
                let bytes = encoded(size: FrameEncoder.dataSize(messageCount: message.count)) { p in
                    message.withUnsafeBytes { FrameEncoder.encodeData(stream: 42, message: $0, endStream: endStream, into: p) }
                }
                #expect(try decode(bytes) == .data(stream: 42, message: message, endStream: endStream))
            }
        }
    }

    @Test("END with and without a head")
    func endRoundTrip() throws {
        let none = encoded(size: FrameEncoder.endSize(nil)) { FrameEncoder.encodeEnd(stream: 8, nil, into: $0) }
        #expect(none.count == FrameHeader.size)
        #expect(try decode(none) == .end(stream: 8, head: nil))
        for status in [Status.ok, .error(code: 2, message: "bad"), .nack(restartable: true, code: 3, message: "later")] {
            let head = ResponseHead(status: status, metadata: ["grpc-status": "0"])
            let bytes = encoded(size: FrameEncoder.endSize(head)) { FrameEncoder.encodeEnd(stream: 8, head, into: $0) }
            #expect(try decode(bytes) == .end(stream: 8, head: head))
        }
    }

    @Test("CANCEL")
    func cancelRoundTrip() throws {
        for (code, reason) in [(ErrorCode.cancelled, "caller gave up"), (.noError, ""), (ErrorCode(rawValue: 999), "ünïcødé")] {
            let bytes = encoded(size: FrameEncoder.cancelSize(reason: reason)) {
                FrameEncoder.encodeCancel(stream: 11, code: code, reason: reason, into: $0)
            }
            #expect(try decode(bytes) == .cancel(stream: 11, code: code, reason: reason))
        }
    }

    @Test("WINDOW with the smallest and largest increments")
    func windowRoundTrip() throws {
        for inc in [1, 65535, UInt32(Int32.max)] as [UInt32] {
            let bytes = encoded(size: FrameEncoder.windowSize) { FrameEncoder.encodeWindow(stream: 2, increment: inc, into: $0) }
            #expect(try decode(bytes) == .window(stream: 2, increment: inc))
        }
    }

    @Test("PING and its ack")
    func pingRoundTrip() throws {
        for ack in [false, true] {
            for opaque in [0, 0x0102_0304_0506_0708, .max] as [UInt64] {
                let bytes = encoded(size: FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: ack, opaque: opaque, into: $0) }
                #expect(try decode(bytes) == .ping(ack: ack, opaque: opaque))
            }
        }
        // Big-endian on the wire.
        let bytes = encoded(size: FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: false, opaque: 0x0102_0304_0506_0708, into: $0) }
        #expect(Array(bytes[10...]) == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test("DRAIN")
    func drainRoundTrip() throws {
        for (last, code, reason) in [(UInt32(0), ErrorCode.noError, "server stopping"), (UInt32.max, .protocolError, "")] {
            let bytes = encoded(size: FrameEncoder.drainSize(reason: reason)) {
                FrameEncoder.encodeDrain(lastStream: last, code: code, reason: reason, into: $0)
            }
            #expect(try decode(bytes) == .drain(lastStream: last, code: code, reason: reason))
        }
    }

    @Test("frames encoded back to back decode one by one through the accumulator")
    func manyFramesThroughAccumulator() throws {
        let head = RequestHead(service: "svc", endpoint: "ep", metadata: ["a": "b"])
        var stream: [UInt8] = []
        stream += encoded(size: FrameEncoder.settingsAckSize) { FrameEncoder.encodeSettingsAck(into: $0) }
        stream += request(stream: 1, head, message: [1, 2, 3], endStream: false)
        stream += encoded(size: FrameEncoder.pingSize) { FrameEncoder.encodePing(ack: true, opaque: 7, into: $0) }
        stream += encoded(size: FrameEncoder.endSize(nil)) { FrameEncoder.encodeEnd(stream: 1, nil, into: $0) }
        var acc = FrameAccumulator(maxPayload: 1 << 16)
        var decoded: [OwnedFrame?] = []
        var failure: FramingError?
        for byte in stream {
            try [byte].withUnsafeBytes { raw in
                try acc.feed(raw) { frame in
                    do throws(FramingError) { decoded.append(try Frame.decode(frame).map(OwnedFrame.init)) } catch { failure = error }
                    return true
                }
            }
        }
        #expect(failure == nil)
        #expect(decoded == [.settings(ack: true, payload: []),
                            .request(stream: 1, head: head, message: [1, 2, 3], endStream: false),
                            .ping(ack: true, opaque: 7), .end(stream: 1, head: nil)])
    }

    @Test("error codes print their protocol names")
    func errorCodeNames() {
        #expect(ErrorCode.frameSizeError.description == "FRAME_SIZE_ERROR")
        #expect(ErrorCode(rawValue: 4) == .frameSizeError)
        #expect(ErrorCode(rawValue: 1234).description == "ERROR_1234")
        #expect(FramingError(.protocolError, "x").description == "PROTOCOL_ERROR: x")
    }
}
