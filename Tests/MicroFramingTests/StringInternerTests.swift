import MicroCore
import MicroFraming
import Testing

@Suite("StringInterner")
struct StringInternerTests {
    func intern(_ interner: inout StringInterner, _ s: String) -> String? {
        Array(s.utf8).withUnsafeBytes { interner.string($0) }
    }

    @Test("names come back equal, long ones from the table (the same storage), short and empty ones too")
    func roundTrip() {
        var interner = StringInterner(capacity: 4)
        let long = "application/octet-stream"
        let a = intern(&interner, long)
        let b = intern(&interner, long)
        #expect(a == long && b == long)
        // The second decode is the remembered string: identical storage, not a copy.
        #expect(a!.utf8.withContiguousStorageIfAvailable { $0.baseAddress } == b!.utf8.withContiguousStorageIfAvailable { $0.baseAddress })
        #expect(intern(&interner, "echo") == "echo")
        #expect(intern(&interner, "") == "")
        #expect(intern(&interner, "grüße.Service") == "grüße.Service")
    }

    @Test("invalid UTF-8 is refused, in the ASCII fast path's neighbourhood too")
    func invalid() {
        var interner = StringInterner()
        for bad: [UInt8] in [[0xFF], [0x61, 0x62, 0xC3], [0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0xE2, 0x82], [0xED, 0xA0, 0x80]] {
            #expect(bad.withUnsafeBytes { interner.string($0) } == nil)
            #expect(bad.withUnsafeBytes { StringInterner.decode($0) } == nil)
        }
    }

    @Test("names that share a prefix and length are told apart; the table replaces old entries when full")
    func collisions() {
        var interner = StringInterner(capacity: 2)
        let names = ["service.alpha.one", "service.alpha.two", "service.alpha.six", "svc"]
        for _ in 0..<3 {
            for n in names { #expect(intern(&interner, n) == n) }
        }
        var plain = StringInterner(capacity: 0)
        #expect(intern(&plain, "service.alpha.one") == "service.alpha.one")
    }

    @Test("well-known content types come back as the literals themselves, and are never evicted")
    func wellKnown() {
        var interner = StringInterner(capacity: 2)
        func bits(_ s: String) -> (UInt64, UInt64) { unsafeBitCast(s, to: (UInt64, UInt64).self) }
        for name in StringInterner.wellKnown {
            let s = intern(&interner, name)
            #expect(s == name)
            #expect(s.map(bits) ?? (0, 0) == bits(name), "the literal's storage, not a decoded copy")
        }
        // Churn through more names than the capacity: the well-known ones stay.
        for i in 0..<20 { #expect(intern(&interner, "service.number.\(i)") == "service.number.\(i)") }
        let raw = intern(&interner, "application/octet-stream")
        #expect(raw.map(bits) ?? (0, 0) == bits(StringInterner.wellKnown[0]))
    }
}
