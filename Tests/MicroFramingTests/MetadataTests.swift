import MicroCore
import MicroFraming
import Testing

private func roundTrip(_ m: Metadata) throws -> (Metadata, Int) {
    var buffer = [UInt8](repeating: 0, count: m.encodedSize + 8)
    let written = buffer.withUnsafeMutableBytes { raw in
        var w = ByteWriter(raw.baseAddress!)
        m.encode(&w)
        return w.offset
    }
    let decoded = try Array(buffer[..<written]).withUnsafeBytes { raw in
        var r = ByteReader(raw)
        let d = try Metadata.decode(&r)
        #expect(r.remaining == 0)
        return d
    }
    return (decoded, written)
}

@Suite("Metadata")
struct MetadataTests {
    @Test("the subscript compares keys case-insensitively and returns the first value")
    func caseInsensitiveSubscript() {
        var m: Metadata = ["Content-Type": "json", "X-Trace": "1"]
        m.append("x-trace", "2")
        #expect(m["content-type"] == "json")
        #expect(m["CONTENT-TYPE"] == "json")
        #expect(m["x-TRACE"] == "1")
        #expect(m["missing"] == nil)
        #expect(m.count == 3)
    }

    @Test("setting a key replaces every value of it, whatever the case; nil removes it")
    func setReplacesAll() {
        var m: Metadata = ["a": "1", "B": "2"]
        m.append("A", "3")
        m["a"] = "4"
        #expect(m.pairs.map(\.key) == ["B", "a"])
        #expect(m["A"] == "4")
        m["b"] = nil
        #expect(m["B"] == nil)
        #expect(m.count == 1)
        m["new"] = "x"
        #expect(m.pairs.last.map { [$0.key, $0.value] } == ["new", "x"])
    }

    @Test("duplicates are kept in order; iteration yields the pairs")
    func duplicatesInOrder() {
        var m = Metadata()
        #expect(m.isEmpty)
        m.append("k", "1")
        m.append("K", "2")
        m.append("k", "3")
        #expect(m.map(\.value) == ["1", "2", "3"])
        #expect(m["k"] == "1")
    }

    @Test("encode/decode round trip, encodedSize equals bytes written", arguments: [
        Metadata(),
        ["a": "b"],
        ["Trace-ID": "🚀 ünïcödé", "": "", "k": String(repeating: "v", count: 65535)],
    ] as [Metadata])
    func roundTripCases(m: Metadata) throws {
        let (decoded, written) = try roundTrip(m)
        #expect(decoded == m)
        #expect(written == m.encodedSize)
        #expect(m.isEncodable)
    }

    @Test("a round trip keeps duplicates, order and case")
    func roundTripDuplicates() throws {
        var m = Metadata()
        for i in 0..<1000 { m.append(i % 2 == 0 ? "Key" : "key", "\(i)") }
        let (decoded, written) = try roundTrip(m)
        #expect(decoded == m)
        #expect(decoded.pairs.map(\.key) == m.pairs.map(\.key))
        #expect(written == m.encodedSize)
    }

    @Test("equality is order- and case-sensitive")
    func equality() {
        let a: Metadata = ["x": "1", "y": "2"]
        #expect(a == ["x": "1", "y": "2"])
        #expect(a != ["y": "2", "x": "1"])
        #expect(a != ["X": "1", "y": "2"])
        #expect(a != ["x": "1"])
    }

    @Test("isEncodable is false for a key or value longer than 65,535 bytes")
    func notEncodable() {
        #expect(!Metadata(dictionaryLiteral: ("k", String(repeating: "v", count: 65536))).isEncodable)
        #expect(!Metadata(dictionaryLiteral: (String(repeating: "k", count: 65536), "v")).isEncodable)
    }

    @Test("a metadata count larger than the pairs present is refused")
    func truncatedMetadata() {
        let bytes = be16(3) + str16("a") + str16("b")
        let e = #expect(throws: FramingError.self) {
            try bytes.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                _ = try Metadata.decode(&r)
            }
        }
        #expect(e?.code == .protocolError)
    }
}

@Suite("ByteReader and ByteWriter")
struct ByteReaderWriterTests {
    @Test("integers are big-endian and reads past the end throw")
    func integers() throws {
        var buffer = [UInt8](repeating: 0, count: 15)
        let n = buffer.withUnsafeMutableBytes { raw in
            var w = ByteWriter(raw.baseAddress!)
            w.u8(0x01)
            w.u16(0x0203)
            w.u32(0x0405_0607)
            w.u64(0x0809_0A0B_0C0D_0E0F)
            return w.offset
        }
        #expect(n == 15)
        #expect(buffer == Array(1...15))
        try buffer.withUnsafeBytes { raw throws in
            var r = ByteReader(raw)
            let a = try r.u8("a"), b = try r.u16("b"), c = try r.u32("c"), d = try r.u64("d")
            #expect(a == 0x01)
            #expect(b == 0x0203)
            #expect(c == 0x0405_0607)
            #expect(d == 0x0809_0A0B_0C0D_0E0F)
            #expect(r.remaining == 0)
            let e = #expect(throws: FramingError.self) { _ = try r.u8("past") }
            #expect(e?.code == .protocolError)
            #expect(r.offset == 15, "a failed read does not move the offset")
        }
    }

    @Test("string16 round trip and size16")
    func strings() throws {
        for s in ["", "a", "ünïcødé 🚀", String(repeating: "x", count: 1000)] {
            var buffer = [UInt8](repeating: 0, count: ByteWriter.size16(s))
            let n = buffer.withUnsafeMutableBytes { raw in
                var w = ByteWriter(raw.baseAddress!)
                w.string16(s)
                return w.offset
            }
            #expect(n == ByteWriter.size16(s))
            let back = try buffer.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                return try r.string16("s")
            }
            #expect(back == s)
        }
    }

    @Test("a string above 65,535 bytes is cut at a character boundary, never trapping; size16 matches", arguments: [
        String(repeating: "a", count: 65535),
        String(repeating: "a", count: 65536),
        String(repeating: "a", count: 65534) + "é",        // 65,536 bytes: the 2-byte character does not fit
        String(repeating: "é", count: 30000) + String(repeating: "🚀", count: 3000),
        String(repeating: "€", count: 21845) + "x",        // 65,535 + 1 bytes
    ])
    func longStringsAreClamped(s: String) throws {
        let size = ByteWriter.size16(s)
        #expect(size <= 2 + 65535)
        #expect(ByteWriter.fits16(s) == (s.utf8.count <= 65535))
        var buffer = [UInt8](repeating: 0, count: size + 16)
        let n = buffer.withUnsafeMutableBytes { raw in
            var w = ByteWriter(raw.baseAddress!)
            w.string16(s)
            return w.offset
        }
        #expect(n == size)
        let back = try Array(buffer[..<n]).withUnsafeBytes { raw in
            var r = ByteReader(raw)
            return try r.string16("s")
        }
        #expect(s.hasPrefix(back), "the cut keeps a prefix of whole characters")
        if ByteWriter.fits16(s) { #expect(back == s) } else { #expect(back.utf8.count > 65535 - 4) }
    }

    @Test("RequestHead.isEncodable tells whether a field would be cut")
    func requestHeadEncodable() {
        #expect(RequestHead(service: "s", endpoint: "e").isEncodable)
        #expect(!RequestHead(service: String(repeating: "s", count: 65536), endpoint: "e").isEncodable)
        #expect(!RequestHead(service: "s", endpoint: "e", metadata: ["k": String(repeating: "v", count: 70000)]).isEncodable)
        #expect(ResponseHead(status: .error(code: 1, message: String(repeating: "m", count: 70000))).isEncodable,
                "a long status message is cut, not refused")
    }
}
