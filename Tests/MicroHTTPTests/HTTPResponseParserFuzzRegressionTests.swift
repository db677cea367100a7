import MicroHTTP
import Testing

@Suite("HTTPResponseParser fuzz regressions")
struct HTTPResponseParserFuzzRegressionTests {
    struct Outcome: Equatable {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
        var failure: String?
    }

    func parse(_ bytes: [UInt8], step: Int) -> Outcome {
        var parser = HTTPResponseParser()
        var out = Outcome()
        func on(_ e: HTTPResponseParser.Event) {
            switch e {
            case .head(let h): out.head = h
            case .body(let b): out.body += b
            case .end: out.ended = true
            }
        }
        do {
            try bytes.withUnsafeBytes { all in
                var i = 0
                while i < all.count {
                    try parser.feed(UnsafeRawBufferPointer(rebasing: all[i..<min(all.count, i + step)]), on)
                    i += step
                }
            }
            try parser.finish(on)
        } catch {
            out.failure = "\(error)"
        }
        return out
    }

    @Test("a chunked response whose chunk data is not followed by CRLF fails the same way whole and in slices")
    func chunkWithoutCRLF() {
        let input = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding:/1.1 200 OK\r\nTRansfer-Encoding: c chunkeD\r\n\r\n4\r\nhe".utf8)
            + [UInt8](repeating: 0, count: 111) + Array("llo\r\n3;x=1\r\nac\n0\r\nT: 1\r\n\n".utf8)
        let whole = parse(input, step: input.count)
        for step in 1...16 {
            let sliced = parse(input, step: step)
            #expect((whole.failure == nil) == (sliced.failure == nil), "step \(step): \(whole) vs \(sliced)")
            if whole.failure == nil { #expect(whole == sliced, "step \(step)") }
        }
    }
}

@Suite("HTTPResponseParser repeated fields")
struct HTTPResponseParserRepeatedFieldTests {
    @Test("repeated header fields, in any letter case, combine in order into one value")
    func combine() throws {
        var parser = HTTPResponseParser()
        var head: HTTPResponseHead?
        let text = "HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: gzip\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\n"
        try Array(text.utf8).withUnsafeBytes { b in
            try parser.feed(b) { if case .head(let h) = $0 { head = h } }
        }
        #expect(head?.header("x-a") == "1, 2")
        #expect(head?.header("Transfer-Encoding") == "gzip, chunked")
        #expect(parser.isComplete)
    }
}
