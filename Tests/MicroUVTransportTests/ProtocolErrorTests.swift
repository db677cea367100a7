import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

/// Bad input from a peer: a clear error (DRAIN with a code and reason, then close), never a crash or a hang,
/// and the server keeps serving everyone else.
@Suite("Protocol errors")
struct ProtocolErrorTests {
    static let preface = ConnectionPreface.bytes
    static let settings = encode { FrameEncoder.encodeSettings(Settings(), into: $0) }

    /// A server that waits long for SETTINGS: these tests look for other errors, and on a busy machine (tests run
    /// in parallel) the raw peer's bytes may arrive seconds after it connected.
    static var patient: UVTransportConfiguration {
        var config = UVTransportConfiguration()
        config.settingsTimeoutMilliseconds = 600_000
        return config
    }

    /// Connects a raw peer, sends `bytes`, and returns the DRAIN (code, reason) the server answers with.
    func expectDrain(_ h: Harness, after bytes: [UInt8]) async throws -> (ErrorCode, String)? {
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        try await peer.send(bytes)
        try await eventually(5, "server closes the connection") { peer.isClosed }
        for (type, _, payload) in peer.frames() where type == .drain {
            let code = ErrorCode(rawValue: payload.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) })
            let reasonLength = Int(payload[8]) << 8 | Int(payload[9])
            return (code, String(decoding: payload[10..<(10 + reasonLength)], as: UTF8.self))
        }
        return nil
    }

    func serverStillServes(_ h: Harness, expectedCount: Int = 1) async throws {
        let r = try await withTimeout(10) {
            try await h.client.unary(to: h.address, head: RequestHead(service: "s", endpoint: "e"), message: [42])
        }
        #expect(r.status == .ok)
        #expect(r.message?.count == expectedCount)
    }

    @Test func garbageInsteadOfPreface() async throws {
        let h = try await Harness.start(server: Self.patient)
        let drain = try await expectDrain(h, after: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(drain?.0 == .badPreface)
        try await serverStillServes(h)
        await h.stop()
    }

    @Test func oversizedFrame() async throws {
        var config = Self.patient
        config.settings.maxFrameSize = 64 << 10
        let h = try await Harness.start(server: config)
        var header = [UInt8](repeating: 0, count: FrameHeader.size)
        header.withUnsafeMutableBytes { FrameHeader(length: 1 << 20, type: .data, streamID: 1).write(to: $0.baseAddress!) }
        let drain = try await expectDrain(h, after: Self.preface + Self.settings + header)
        #expect(drain?.0 == .frameSizeError)
        #expect(drain?.1.contains("exceeds") == true)
        try await serverStillServes(h)
        await h.stop()
    }

    @Test func firstFrameMustBeSettings() async throws {
        let h = try await Harness.start(server: Self.patient)
        let ping = encode { FrameEncoder.encodePing(ack: false, opaque: 1, into: $0) }
        let drain = try await expectDrain(h, after: Self.preface + ping)
        #expect(drain?.0 == .protocolError)
        await h.stop()
    }

    @Test func malformedRequestHead() async throws {
        let h = try await Harness.start(server: Self.patient)
        var bad = [UInt8](repeating: 0, count: FrameHeader.size + 3)
        bad.withUnsafeMutableBytes { FrameHeader(length: 3, type: .request, streamID: 1).write(to: $0.baseAddress!) }
        bad[FrameHeader.size] = 0xFF  // a service name length far beyond the payload
        let drain = try await expectDrain(h, after: Self.preface + Self.settings + bad)
        #expect(drain?.0 == .protocolError)
        #expect(drain?.1.contains("truncated") == true)
        try await serverStillServes(h)
        await h.stop()
    }

    @Test func streamIDsMustIncrease() async throws {
        let h = try await Harness.start(server: Self.patient)
        let head = RequestHead(service: "s", endpoint: "e")
        let r5 = encode { FrameEncoder.encodeRequest(stream: 5, head, message: nil, endStream: true, into: $0) }
        let r3 = encode { FrameEncoder.encodeRequest(stream: 3, head, message: nil, endStream: true, into: $0) }
        let drain = try await expectDrain(h, after: Self.preface + Self.settings + r5 + r3)
        #expect(drain?.0 == .protocolError)
        await h.stop()
    }

    @Test func dataWithoutCreditIsAFlowControlError() async throws {
        var config = Self.patient
        config.settings.initialWindow = 100
        let h = try await Harness.start(server: config) { stream in
            // Never reads: no credit is returned.
            try? await Task.sleep(for: .seconds(10))
        }
        let head = RequestHead(service: "s", endpoint: "e")
        let open = encode { FrameEncoder.encodeRequest(stream: 1, head, message: nil, endStream: false, into: $0) }
        let chunk = [UInt8](repeating: 1, count: 80)
        let data = chunk.withUnsafeBytes { b in encode { FrameEncoder.encodeData(stream: 1, message: b, endStream: false, into: $0) } }
        // 80 + 80 uses the window up (allowed to go negative once); the third DATA has no credit.
        let drain = try await expectDrain(h, after: Self.preface + Self.settings + open + data + data + data)
        #expect(drain?.0 == .flowControlError)
        await h.stop()
    }

    @Test func silentClientIsDroppedAfterSettingsTimeout() async throws {
        var config = Self.patient
        config.settingsTimeoutMilliseconds = 100
        config.housekeepingIntervalMilliseconds = 20
        let h = try await Harness.start(server: config)
        let peer = try await RawPeer.connect(h.clientGroup.loops[0], try SocketAddress(h.address))
        // Sends nothing at all.
        try await eventually(5, "silent client dropped") { peer.isClosed }
        #expect(peer.frames().contains { $0.0 == .drain })
        await h.stop()
    }

    @Test func clientThatNeverReadsIsNotReadEither() async throws {
        let handled = Atomic<Int>(0)
        let h = try await Harness.start(server: Self.patient) { stream in
            handled.add(1, ordering: .relaxed)
            try? await stream.respond([UInt8](repeating: 7, count: 16 << 10))
        }
        // A raw client that floods requests and never reads a response.
        let tcp = try await TCPConnection.connect(on: h.clientGroup.loops[0], to: try SocketAddress(h.address))
        let head = RequestHead(service: "s", endpoint: "e")
        let sent = try await withTimeout(30) {
            var sent = 0
            try await h.clientGroup.loops[0].submit {
                tcp.write(contentsOf: ConnectionPreface.bytes + Self.settings)
            }
            // Write until the client's own socket is full (the server stopped reading), bounded by a count.
            while sent < 200_000 {
                let base = UInt32(sent)
                let more: Bool = try await h.clientGroup.loops[0].submit {
                    guard tcp.isWritable else { return false }
                    for i in 1...500 {
                        let id = base + UInt32(i)
                        let frame = encode { FrameEncoder.encodeRequest(stream: id, head, message: nil, endStream: true, into: $0) }
                        tcp.write(contentsOf: frame)
                    }
                    return true
                }
                if !more { break }
                sent += 500
                try await Task.sleep(for: .milliseconds(1))
            }
            return sent
        }
        let before = handled.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(300))
        let after = handled.load(ordering: .relaxed)
        #expect(sent < 200_000, "the client's socket filled up: the server stopped reading")
        #expect(after == before, "the server handles nothing more while its responses are not read")
        #expect(after < sent)
        try await h.clientGroup.loops[0].submit { tcp.close() }
        try await serverStillServes(h, expectedCount: 16 << 10)
        await h.stop()
    }
}
