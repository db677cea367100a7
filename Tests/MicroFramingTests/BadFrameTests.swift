import MicroCore
import MicroFraming
import Testing

/// Decodes and expects a FramingError with `code`.
private func expectError(_ bytes: [UInt8], _ code: ErrorCode, _ comment: Comment? = nil,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let f = try decode(bytes)
        Issue.record("decoded \(String(describing: f)) instead of failing with \(code)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, comment, sourceLocation: sourceLocation)
        #expect(!error.reason.isEmpty, sourceLocation: sourceLocation)
    }
}

private let goodHeadPayload: [UInt8] = {
    var p: [UInt8] = []
    p += str16("svc") + str16("ep") + str16("ct") + be64(1000) + be16(1)
    p += be16(1) + str16("k") + str16("v")   // one metadata pair
    return p
}()

private let okStatus: [UInt8] = [0] + be32(0) + be16(0)
private let noMetadata: [UInt8] = be16(0)

@Suite("Malformed frames")
struct BadFrameTests {
    @Test("SETTINGS, PING and DRAIN must be on stream 0")
    func sessionFramesOnAStream() {
        expectError(rawFrame(type: 0, stream: 1, payload: []), .protocolError)
        expectError(rawFrame(type: 0, flags: 1, stream: 3, payload: []), .protocolError)
        expectError(rawFrame(type: 7, stream: 1, payload: be64(1)), .protocolError)
        expectError(rawFrame(type: 8, stream: 2, payload: be32(0) + be32(0) + str16("")), .protocolError)
        // Control: the same on stream 0 decodes.
        #expect((try? decode(rawFrame(type: 7, stream: 0, payload: be64(1)))) == .ping(ack: false, opaque: 1))
        #expect((try? decode(rawFrame(type: 8, stream: 0, payload: be32(0) + be32(0) + str16("")))) ==
                .drain(lastStream: 0, code: .noError, reason: ""))
    }

    @Test("REQUEST, RESPONSE, DATA, END and CANCEL must not be on stream 0")
    func streamFramesOnStreamZero() {
        expectError(rawFrame(type: 1, stream: 0, payload: goodHeadPayload), .protocolError, "REQUEST")
        expectError(rawFrame(type: 2, stream: 0, payload: okStatus + noMetadata), .protocolError, "RESPONSE")
        expectError(rawFrame(type: 3, stream: 0, payload: [1, 2]), .protocolError, "DATA")
        expectError(rawFrame(type: 4, stream: 0), .protocolError, "END")
        expectError(rawFrame(type: 5, stream: 0, payload: be32(6) + str16("x")), .protocolError, "CANCEL")
        // Control: the same frames on stream 1 decode.
        #expect((try? decode(rawFrame(type: 3, stream: 1, payload: [1, 2]))) == .data(stream: 1, message: [1, 2], endStream: false))
        #expect((try? decode(rawFrame(type: 4, stream: 1))) == .end(stream: 1, head: nil))
        #expect((try? decode(rawFrame(type: 1, stream: 1, payload: goodHeadPayload))) != nil)
    }

    @Test("a PING payload must be exactly 8 bytes", arguments: [0, 1, 7, 9, 16])
    func pingPayloadSize(size: Int) {
        expectError(rawFrame(type: 7, stream: 0, payload: [UInt8](repeating: 0, count: size)), .frameSizeError)
        expectError(rawFrame(type: 7, flags: 1, stream: 0, payload: [UInt8](repeating: 0, count: size)), .frameSizeError)
    }

    @Test("a SETTINGS ack must be empty")
    func settingsAckWithPayload() {
        expectError(rawFrame(type: 0, flags: 1, stream: 0, payload: be16(1) + be32(1 << 20)), .frameSizeError)
    }

    @Test("a WINDOW increment of 0 or above 2^31-1 is a flow-control error")
    func windowIncrement() {
        expectError(rawFrame(type: 6, stream: 1, payload: be32(0)), .flowControlError)
        expectError(rawFrame(type: 6, stream: 1, payload: be32(1 << 31)), .flowControlError)
        expectError(rawFrame(type: 6, stream: 1, payload: be32(.max)), .flowControlError)
        #expect((try? decode(rawFrame(type: 6, stream: 1, payload: be32(1)))) == .window(stream: 1, increment: 1))
    }

    @Test("a WINDOW payload must be exactly 4 bytes")
    func windowPayloadSize() {
        expectError(rawFrame(type: 6, stream: 1, payload: [0, 0, 1]), .protocolError)
        expectError(rawFrame(type: 6, stream: 1, payload: be32(1) + [0]), .protocolError)
    }

    @Test("a REQUEST head cut at every length is refused")
    func truncatedRequestHead() {
        for n in 0..<goodHeadPayload.count {
            expectError(rawFrame(type: 1, stream: 1, payload: Array(goodHeadPayload[..<n])), .protocolError, "cut at \(n)")
        }
        #expect((try? decode(rawFrame(type: 1, stream: 1, payload: goodHeadPayload))) ==
                .request(stream: 1, head: RequestHead(service: "svc", endpoint: "ep", contentType: "ct",
                                                      timeoutMicroseconds: 1000, attempt: 1, metadata: ["k": "v"]),
                         message: nil, endStream: false))
    }

    @Test("a RESPONSE head cut at every length is refused")
    func truncatedResponseHead() {
        let payload = [1] + be32(7) + str16("oops") + be16(1) + str16("a") + str16("b")
        for n in 0..<payload.count {
            expectError(rawFrame(type: 2, stream: 1, payload: Array(payload[..<n])), .protocolError, "cut at \(n)")
            if n > 0 { expectError(rawFrame(type: 4, stream: 1, payload: Array(payload[..<n])), .protocolError, "END cut at \(n)") }
        }
    }

    @Test("a string length running past the payload is refused")
    func stringLengthPastEnd() {
        expectError(rawFrame(type: 5, stream: 1, payload: be32(6) + be16(10) + Array("short".utf8)), .protocolError)
        expectError(rawFrame(type: 8, stream: 0, payload: be32(0) + be32(0) + be16(0xFFFF)), .protocolError)
    }

    @Test("invalid UTF-8 in any string is refused", arguments: [
        [0xFF] as [UInt8], [0xC0, 0x80], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0x61, 0xFE, 0x62],
    ])
    func invalidUTF8(bad: [UInt8]) {
        let badStr = be16(UInt16(bad.count)) + bad
        // Service, endpoint, content type, metadata key and value of a REQUEST.
        let rest = be64(0) + be16(1)
        expectError(rawFrame(type: 1, stream: 1, payload: badStr + str16("e") + str16("c") + rest + noMetadata), .protocolError)
        expectError(rawFrame(type: 1, stream: 1, payload: str16("s") + badStr + str16("c") + rest + noMetadata), .protocolError)
        expectError(rawFrame(type: 1, stream: 1, payload: str16("s") + str16("e") + badStr + rest + noMetadata), .protocolError)
        expectError(rawFrame(type: 1, stream: 1, payload: str16("s") + str16("e") + str16("c") + rest + be16(1) + badStr + str16("v")),
                    .protocolError)
        expectError(rawFrame(type: 1, stream: 1, payload: str16("s") + str16("e") + str16("c") + rest + be16(1) + str16("k") + badStr),
                    .protocolError)
        // Status message, CANCEL and DRAIN reasons.
        expectError(rawFrame(type: 2, stream: 1, payload: [1] + be32(1) + badStr + noMetadata), .protocolError)
        expectError(rawFrame(type: 5, stream: 1, payload: be32(6) + badStr), .protocolError)
        expectError(rawFrame(type: 8, stream: 0, payload: be32(0) + be32(0) + badStr), .protocolError)
    }

    @Test("trailing bytes after CANCEL, DRAIN, END, and a message-less REQUEST/RESPONSE are refused")
    func trailingBytes() {
        expectError(rawFrame(type: 5, stream: 1, payload: be32(6) + str16("r") + [0]), .protocolError, "CANCEL")
        expectError(rawFrame(type: 8, stream: 0, payload: be32(1) + be32(0) + str16("r") + [0, 0]), .protocolError, "DRAIN")
        expectError(rawFrame(type: 4, stream: 1, payload: okStatus + noMetadata + [9]), .protocolError, "END")
        expectError(rawFrame(type: 1, stream: 1, payload: goodHeadPayload + [1, 2, 3]), .protocolError, "REQUEST")
        expectError(rawFrame(type: 2, stream: 1, payload: okStatus + noMetadata + [7]), .protocolError, "RESPONSE")
        // With HAS_MESSAGE the same bytes are the message.
        guard case .response(_, _, let m, _)? = try? decode(rawFrame(type: 2, flags: 2, stream: 1, payload: okStatus + noMetadata + [7])) else {
            Issue.record("RESPONSE with a message did not decode"); return
        }
        #expect(m.map(Array.init) == [7])
    }

    @Test("an unknown status kind is refused", arguments: [4, 5, 0x80, 0xFF] as [UInt8])
    func unknownStatusKind(kind: UInt8) {
        expectError(rawFrame(type: 2, stream: 1, payload: [kind] + be32(0) + str16("") + noMetadata), .protocolError)
        expectError(rawFrame(type: 4, stream: 1, payload: [kind] + be32(0) + str16("") + noMetadata), .protocolError)
    }

    @Test("a frame of an unknown type is ignored (nil), whatever its stream and payload", arguments: [9, 10, 0x7F, 0xFF] as [UInt8])
    func unknownType(type: UInt8) throws {
        #expect(try decode(rawFrame(type: type, stream: 0)) == nil)
        #expect(try decode(rawFrame(type: type, flags: 0xFF, stream: 12, payload: [1, 2, 3])) == nil)
    }

    @Test("undefined flag bits are ignored")
    func undefinedFlags() throws {
        #expect(try decode(rawFrame(type: 7, flags: 0xFE, stream: 0, payload: be64(5))) == .ping(ack: false, opaque: 5))
        #expect(try decode(rawFrame(type: 3, flags: 0xFC, stream: 4, payload: [1])) == .data(stream: 4, message: [1], endStream: false))
    }
}
