@testable import MicroHTTP
import Testing

@Suite struct HTTPResponseParserTests {
    /// Feeds `text` in pieces of `step` bytes; returns the head, the body and whether it ended.
    func parse(_ text: String, step: Int, close: Bool = false) throws -> (HTTPResponseHead?, [UInt8], Bool) {
        var parser = HTTPResponseParser()
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var ended = false
        let bytes = Array(text.utf8)
        var i = 0
        func on(_ e: HTTPResponseParser.Event) {
            switch e {
            case .head(let h): head = h
            case .body(let b): body += b
            case .end: ended = true
            }
        }
        while i < bytes.count {
            let slice = Array(bytes[i..<min(bytes.count, i + step)])
            try slice.withUnsafeBytes { try parser.feed($0, on) }
            i += step
        }
        if close { try parser.finish(on) }
        return (head, body, ended)
    }

    @Test(arguments: [1, 2, 7, 1000])
    func contentLength(step: Int) throws {
        let (head, body, ended) = try parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-type: x\r\n\r\nhello", step: step)
        #expect(head?.status == 200)
        #expect(head?.header("Content-Type") == "x")
        #expect(String(decoding: body, as: UTF8.self) == "hello")
        #expect(ended)
    }

    @Test(arguments: [1, 3, 1000])
    func chunkedDripFed(step: Int) throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nB;ext=1\r\n, the world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        let (head, body, ended) = try parse(text, step: step)
        #expect(head?.status == 200)
        #expect(String(decoding: body, as: UTF8.self) == "hello, the world")
        #expect(ended)
    }

    @Test func chunkedStreamNotEndedYet() throws {
        let (_, body, ended) = try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{}\n\n\r\n", step: 5)
        #expect(body == Array("{}\n\n".utf8))
        #expect(!ended)
    }

    @Test func bodyUntilClose() throws {
        let (_, body, ended) = try parse("HTTP/1.1 200 OK\r\n\r\nall of it", step: 4, close: true)
        #expect(String(decoding: body, as: UTF8.self) == "all of it")
        #expect(ended)
    }

    @Test func informationalResponseSkipped() throws {
        let (head, body, _) = try parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", step: 3)
        #expect(head?.status == 201)
        #expect(body == Array("ok".utf8))
    }

    @Test func truncatedBodyIsAnError() {
        #expect(throws: HTTPError.self) {
            _ = try parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", step: 100, close: true)
        }
    }

    @Test(arguments: ["HTTP/1.1 abc OK\r\n\r\n", "SSH-2.0\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
    func malformed(text: String) {
        #expect(throws: HTTPError.self) { _ = try parse(text, step: 100) }
    }
}
