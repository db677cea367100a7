import MicroCore
import MicroEventLoop
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

/// The open points of docs/PROTOCOL.md closed, each as the server now behaves, on the unary fast path (a REQUEST
/// with the message and END_STREAM) and on the long form (the message in DATA) alike.
@Suite("Protocol rules")
struct ProtocolRulesTests {
    /// Endpoint "slow" (unary) answers after 10 s unless cancelled; "echo" (unary) answers at once; "big" (unary)
    /// answers with 64 KiB; "stream" is a stream that waits 10 s.
    final class Handlers: ServerHandler, Sendable {
        final class Unary: UnaryHandler {
            nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
                switch request.head.endpoint {
                case "slow":
                    try? await Task.sleep(for: .seconds(10))
                    return UnaryReply(message: [1])
                case "big":
                    return UnaryReply(message: [UInt8](repeating: 7, count: 64 << 10))
                default:
                    return UnaryReply(message: request.message)
                }
            }
        }
        let unary = Unary()
        func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { head.endpoint == "stream" ? nil : unary }
        func handleStream(_ stream: ServerStream) async {
            if stream.head.endpoint == "stream" {
                try? await Task.sleep(for: .seconds(10))
                try? await stream.finish()
            } else {
                await unary.serveAsStream(stream)
            }
        }
    }

    static let settings = encode { FrameEncoder.encodeSettings(Settings(), into: $0) }
    static func request(_ id: UInt32, _ endpoint: String, message: [UInt8]?, end: Bool) -> [UInt8] {
        let head = RequestHead(service: "s", endpoint: endpoint)
        guard let message else { return encode { FrameEncoder.encodeRequest(stream: id, head, message: nil, endStream: end, into: $0) } }
        return message.withUnsafeBytes { m in encode { FrameEncoder.encodeRequest(stream: id, head, message: m, endStream: end, into: $0) } }
    }
    static func data(_ id: UInt32, _ message: [UInt8], end: Bool) -> [UInt8] {
        message.withUnsafeBytes { m in encode { FrameEncoder.encodeData(stream: id, message: m, endStream: end, into: $0) } }
    }
    static func window(_ id: UInt32, _ n: UInt32) -> [UInt8] { encode { FrameEncoder.encodeWindow(stream: id, increment: n, into: $0) } }
    static func endFrame(_ id: UInt32) -> [UInt8] { encode { FrameEncoder.encodeEnd(stream: id, nil, into: $0) } }

    /// The status in a RESPONSE or END payload.
    static func status(_ payload: [UInt8]) -> Status? {
        payload.withUnsafeBytes { b in
            var reader = ByteReader(b)
            return try? ResponseHead.decode(&reader).status
        }
    }

    /// A raw client: preface, SETTINGS, then `frames`; returns the DRAIN it got (code, reason) once closed, or nil.
    static func drain(_ h: Harness, after frames: [UInt8]) async throws -> (ErrorCode, String)? {
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(ConnectionPreface.bytes + settings + frames)
        try await eventually(10, "server closes the connection") { peer.isClosed }
        for (type, _, payload) in peer.frames() where type == .drain {
            let code = ErrorCode(rawValue: payload.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) })
            let length = Int(payload[8]) << 8 | Int(payload[9])
            return (code, String(decoding: payload[10..<(10 + length)], as: UTF8.self))
        }
        return nil
    }

    static func patient() -> UVTransportConfiguration {
        var config = UVTransportConfiguration()
        config.settingsTimeoutMilliseconds = 600_000
        return config
    }

    @Test("DATA after a REQUEST with END_STREAM: PROTOCOL_ERROR on the fast path and the long form alike",
          arguments: ["slow", "stream"])
    func dataAfterEndStream(endpoint: String) async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        let frames = Self.request(1, endpoint, message: [1], end: true) + Self.data(1, [2], end: false)
        let drain = try await Self.drain(h, after: frames)
        #expect(drain?.0 == .protocolError, "\(endpoint)")
        #expect(drain?.1 == "DATA after the end of stream 1", "\(endpoint)")
        await h.stop()
    }

    @Test("END after a REQUEST with END_STREAM: PROTOCOL_ERROR on both paths", arguments: ["slow", "stream"])
    func endAfterEndStream(endpoint: String) async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        let drain = try await Self.drain(h, after: Self.request(1, endpoint, message: [1], end: true) + Self.endFrame(1))
        #expect(drain?.0 == .protocolError, "\(endpoint)")
        #expect(drain?.1 == "END after the end of stream 1", "\(endpoint)")
        await h.stop()
    }

    @Test("WINDOW that overflows the credit of an open stream: FLOW_CONTROL_ERROR on both paths", arguments: ["slow", "stream"])
    func windowOverflow(endpoint: String) async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        let drain = try await Self.drain(h, after: Self.request(1, endpoint, message: [1], end: true) + Self.window(1, UInt32(Int32.max)))
        #expect(drain?.0 == .flowControlError, "\(endpoint)")
        await h.stop()
    }

    @Test("frames for a stream the server already ended are ignored (they may have crossed its end)")
    func framesAfterTheServersEndAreIgnored() async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(ConnectionPreface.bytes + Self.settings + Self.request(1, "echo", message: [5], end: true))
        try await eventually(10, "answered") { peer.frames().contains { $0.0 == .response && $0.1 == 1 } }
        try await peer.send(Self.data(1, [2], end: false) + Self.window(1, 10) + Self.request(3, "echo", message: [6], end: true))
        try await eventually(10, "next call answered") { peer.frames().contains { $0.0 == .response && $0.1 == 3 } }
        #expect(!peer.frames().contains { $0.0 == .drain })
        let connection = peer.connection!
        try await connection.loop.submit { connection.close() }
        await h.stop()
    }

    /// The final status of a call over the long form (the message in DATA frames).
    static func longFormStatus(_ h: Harness, _ frames: [UInt8]) async throws -> Status? {
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(ConnectionPreface.bytes + Self.settings + frames)
        try await eventually(10, "the call ends") {
            peer.frames().contains { ($0.0 == .end || $0.0 == .response) && $0.1 == 1 && ($0.0 == .end || $0.2.count > 0) }
        }
        let last = peer.frames().last { ($0.0 == .end || $0.0 == .response) && $0.1 == 1 }!
        let connection = peer.connection!
        try await connection.loop.submit { connection.close() }
        return Self.status(last.2)
    }

    @Test("a unary endpoint reached without a message, or with two, answers INVALID_ARGUMENT and does not run")
    func unaryMessageCount() async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        let none = try await Self.longFormStatus(h, Self.request(1, "echo", message: nil, end: false) + Self.endFrame(1))
        let two = try await Self.longFormStatus(h, Self.request(1, "echo", message: nil, end: false) + Self.data(1, [1], end: false) + Self.data(1, [2], end: true))
        for (what, status) in [("none", none), ("two", two)] {
            guard case .error(let code, _)? = status else { Issue.record("\(what): \(String(describing: status))"); continue }
            #expect(StatusCode(rawValue: code) == .invalidArgument, "\(what)")
        }
        let one = try await Self.longFormStatus(h, Self.request(1, "echo", message: nil, end: false) + Self.data(1, [1], end: true))
        #expect(one == .ok)
        await h.stop()
    }

    @Test("a unary response larger than the caller's MAX_FRAME_SIZE ends in RESOURCE_EXHAUSTED on both paths, never OK")
    func responseTooLarge() async throws {
        let h = try await Harness.start(server: Self.patient(), serverHandler: Handlers())
        var small = Settings()
        small.maxFrameSize = 16 << 10
        for frames in [Self.request(1, "big", message: [0], end: true),
                       Self.request(1, "big", message: nil, end: false) + Self.data(1, [0], end: true)] {
            let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
            let settings = encode { FrameEncoder.encodeSettings(small, into: $0) }
            try await peer.send(ConnectionPreface.bytes + settings + frames)
            try await eventually(10, "the call ends") {
                peer.frames().contains { $0.1 == 1 && ($0.0 == .end || ($0.0 == .response && $0.2.first != 0)) }
            }
            let last = peer.frames().last { ($0.0 == .end || $0.0 == .response) && $0.1 == 1 }!
            let status = Self.status(last.2)
            guard case .error(let code, _)? = status else { Issue.record("\(String(describing: status))"); continue }
            #expect(StatusCode(rawValue: code) == .resourceExhausted)
            let connection = peer.connection!
            try await connection.loop.submit { connection.close() }
        }
        await h.stop()
    }
}
