import MicroCore
import MicroFraming
import Testing

private func pairs(_ p: [(UInt16, UInt32)]) -> [UInt8] { p.flatMap { be16($0.0) + be32($0.1) } }

private func apply(_ payload: [UInt8], to base: Settings = Settings()) throws(FramingError) -> Settings {
    let result: Result<Settings, FramingError> = payload.withUnsafeBytes { raw in
        do throws(FramingError) { return .success(try base.applying(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

private func expectRefused(_ payload: [UInt8], _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation) {
    let e = #expect(throws: FramingError.self, sourceLocation: sourceLocation) { _ = try apply(payload) }
    #expect(e?.code == code, sourceLocation: sourceLocation)
}

@Suite("Settings")
struct SettingsTests {
    @Test("defaults")
    func defaults() {
        let s = Settings()
        #expect(s.maxFrameSize == 4 << 20)
        #expect(s.maxConcurrentStreams == 4096)
        #expect(s.initialWindow == 1 << 20)
        #expect(s.protocolVersion == 1)
        #expect(Settings.minFrameSize == 16 * 1024)
        #expect(Settings.maxFrameSizeLimit == 64 * 1024 * 1024)
    }

    @Test("encode writes every setting; applying it to defaults gives the same settings")
    func encodeApplyRoundTrip() throws {
        var s = Settings()
        s.maxFrameSize = 16 * 1024
        s.maxConcurrentStreams = 0
        s.initialWindow = UInt32(Int32.max)
        var bytes = [UInt8](repeating: 0, count: s.encodedSize)
        let n = bytes.withUnsafeMutableBytes { s.encode(into: $0.baseAddress!) }
        #expect(n == s.encodedSize)
        #expect(n % 6 == 0)
        #expect(try apply(bytes) == s)
        #expect(bytes == pairs([(1, 16 * 1024), (2, 0), (3, UInt32(Int32.max)), (4, 1)]))
    }

    @Test("known ids are applied, in order, on top of the base")
    func applyKnownIds() throws {
        var base = Settings()
        base.maxConcurrentStreams = 10
        let s = try apply(pairs([(1, 1 << 20), (3, 5000), (3, 6000)]), to: base)
        #expect(s.maxFrameSize == 1 << 20)
        #expect(s.initialWindow == 6000, "a repeated id: the last value wins")
        #expect(s.maxConcurrentStreams == 10, "an id not sent keeps the base value")
        #expect(s.protocolVersion == 1)
        // An empty payload changes nothing.
        #expect(try apply([], to: base) == base)
    }

    @Test("unknown ids are ignored")
    func unknownIdsIgnored() throws {
        let s = try apply(pairs([(0, 123), (5, 0), (99, .max), (0xFFFF, 7), (2, 8)]))
        var expected = Settings()
        expected.maxConcurrentStreams = 8
        #expect(s == expected)
    }

    @Test("MAX_FRAME_SIZE outside 16 KiB...64 MiB is refused", arguments: [
        0, 1, 16 * 1024 - 1, 64 * 1024 * 1024 + 1, UInt32.max,
    ] as [UInt32])
    func maxFrameSizeOutOfRange(value: UInt32) {
        expectRefused(pairs([(1, value)]), .protocolError)
    }

    @Test("MAX_FRAME_SIZE at the bounds is accepted", arguments: [16 * 1024, 64 * 1024 * 1024] as [UInt32])
    func maxFrameSizeBounds(value: UInt32) throws {
        #expect(try apply(pairs([(1, value)])).maxFrameSize == value)
    }

    @Test("a payload that is not a multiple of 6 bytes is refused", arguments: [1, 5, 7, 11, 13])
    func notMultipleOfSix(count: Int) {
        let payload = Array((pairs([(2, 1), (3, 1), (4, 1)]) + [0, 0, 0, 0, 0, 0])[..<count])
        expectRefused(payload, .frameSizeError)
    }

    @Test("a protocol version other than 1 is refused", arguments: [0, 2, 0xFFFF_FFFF] as [UInt32])
    func wrongVersion(version: UInt32) {
        expectRefused(pairs([(4, version)]), .protocolError)
        #expect((try? apply(pairs([(4, 1)])))?.protocolVersion == 1)
    }

    @Test("an initial window above 2^31-1 is a flow-control error")
    func windowTooLarge() throws {
        expectRefused(pairs([(3, UInt32(Int32.max) + 1)]), .flowControlError)
        #expect(try apply(pairs([(3, 0)])).initialWindow == 0)
    }

    @Test("a bad value after good ones refuses the whole payload and leaves the base untouched")
    func atomicApply() {
        let base = Settings()
        expectRefused(pairs([(2, 1), (1, 1)]), .protocolError)
        #expect(base == Settings())
    }
}
