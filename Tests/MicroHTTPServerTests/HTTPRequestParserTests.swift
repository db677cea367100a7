import Foundation
import HTTPTypes
import MicroHTTPServer
import Testing

/// The request parser on bytes: framing in any slicing, keep-alive rules, and every refusal with its status.
@Suite struct HTTPRequestParserTests {
    func parseAll(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits(), slice: Int = .max) throws -> [HTTPRequestParser.Request] {
        var parser = HTTPRequestParser(limits: limits)
        var out: [HTTPRequestParser.Request] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let end = min(bytes.count, i + slice)
            parser.append(Array(bytes[i..<end]))
            while let r = try parser.next() { out.append(r) }
            i = end
        }
        return out
    }

    func status(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits()) -> Int? {
        do {
            _ = try parseAll(text, limits: limits)
            return nil
        } catch let error as HTTPParseError {
            return error.status.code
        } catch {
            return -1
        }
    }

    @Test func getAndPostInAnySlicing() throws {
        let text = "GET /services HTTP/1.1\r\nHost: a\r\n\r\nPOST /greeter/Greeter.Hello HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"name\":\"Ada\"}"
        for slice in [1, 2, 7, 1000] {
            let requests = try parseAll(text, slice: slice)
            #expect(requests.count == 2, "slice \(slice)")
            #expect(requests[0].head.method == .get)
            #expect(requests[0].head.path == "/services")
            #expect(requests[0].head.authority == "a")
            #expect(requests[0].body.isEmpty)
            #expect(requests[1].head.method == .post)
            #expect(requests[1].head.headerFields[.contentType] == "application/json")
            #expect(String(decoding: requests[1].body, as: UTF8.self) == "{\"name\":\"Ada\"}")
            #expect(requests.allSatisfy { $0.keepAlive })
        }
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let text = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n"
        for slice in [1, 3, 1000] {
            let r = try parseAll(text, slice: slice)
            #expect(r.count == 1)
            #expect(String(decoding: r[0].body, as: UTF8.self) == "hello, world!!!")
        }
    }

    @Test func keepAliveRules() throws {
        #expect(try parseAll("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[0].keepAlive == false)
        #expect(try parseAll("GET / HTTP/1.0\r\n\r\n")[0].keepAlive == false)
        let ten = try parseAll("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")[0]
        #expect(ten.keepAlive && ten.isHTTP10)
        #expect(try parseAll("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n")[0].keepAlive)
    }

    @Test func lenientWhereSafe() throws {
        // Empty lines before the request line and bare LF line ends.
        let r = try parseAll("\r\n\r\nGET /a HTTP/1.1\nHost: a\n\n")
        #expect(r.count == 1 && r[0].head.path == "/a")
        #expect(try parseAll("GET / HTTP/1.1\r\nHost: a\r\nX:   padded  \r\n\r\n")[0].head.headerFields[HTTPField.Name("X")!] == "padded")
        #expect(try parseAll("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc")[0].body.count == 3)
    }

    @Test func expectContinue() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n".utf8))
        #expect(try parser.next() == nil)
        let first = parser.takeContinueRequest()
        let second = parser.takeContinueRequest()
        #expect(first)
        #expect(!second, "once")
        #expect(parser.isMidRequest)
        parser.append(Array("abc".utf8))
        #expect(try parser.next()?.body.count == 3)
        #expect(!parser.isMidRequest)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n") == 417)
    }

    @Test("refusals and their status", arguments: [
        ("GET / HTTP/1.1\r\n\r\n", 400),                                                   // no Host
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / FTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("\u{16}\u{03}\u{01}\u{02}\u{00}\u{01}\u{00}\u{01}\u{fc}\u{03}\u{03} garbage\r\n\r\n", 400),   // a TLS hello
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n  folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET http://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX: \u{7f}\r\n\r\n", 400),
    ])
    func refusals(_ text: String, _ expected: Int) {
        #expect(status(text) == expected, "\(text.debugDescription)")
    }

    @Test func limits() {
        var limits = HTTPRequestLimits()
        limits.maxRequestLineBytes = 64
        limits.maxHeaderBytes = 128
        limits.maxHeaderCount = 3
        limits.maxBodyBytes = 10
        #expect(status("GET /\(String(repeating: "a", count: 100)) HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits) == 414)
        // Said as soon as the line is too long, before its end arrives.
        #expect(status("GET /\(String(repeating: "a", count: 100))", limits: limits) == 414)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "b", count: 200))\r\n\r\n", limits: limits) == 431)
        #expect(status("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits) == 431)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", limits: limits) == 413)
        #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n", limits: limits) == 413)
        // A head that never ends is refused once it passes the limits, not buffered for ever.
        #expect(status("GET / HTTP/1.1\r\n" + String(repeating: "X: y\r\n", count: 100), limits: limits) == 431)
        #expect(status(String(repeating: "\r\n", count: 100), limits: limits) == 400)
    }

    @Test func pipelinedRequestsWaitInTheBuffer() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HT".utf8))
        #expect(try parser.next()?.head.path == "/1")
        #expect(parser.bufferedBytes > 0)
        #expect(try parser.next()?.head.path == "/2")
        #expect(try parser.next() == nil)
        #expect(parser.isMidRequest)
        parser.append(Array("TP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(try parser.next()?.head.path == "/3")
        #expect(parser.bufferedBytes == 0)
    }

    /// What `bytes` give fed in `slice`-byte pieces: the requests' paths, then the error's status (or 0).
    func outcome(_ bytes: [UInt8], slice: Int, limits: HTTPRequestLimits) -> ([String], Int) {
        var parser = HTTPRequestParser(limits: limits)
        var paths: [String] = []
        var i = 0
        do {
            while i < bytes.count {
                parser.append(Array(bytes[i..<min(bytes.count, i + slice)]))
                while let r = try parser.next() { paths.append(r.head.path ?? "") }
                i += slice
            }
        } catch {
            return (paths, error.status.code)
        }
        return (paths, 0)
    }

    /// Regression (FuzzHTTPRequest, corpus file regression-limit-depends-on-slicing): with small limits, a head over
    /// them was 400 in one piece and 431 byte by byte. Every limit is now checked at the byte that passes it.
    @Test func errorsDoNotDependOnSlicing() {
        var small = HTTPRequestLimits()
        small.maxRequestLineBytes = 40
        small.maxHeaderBytes = 64
        small.maxHeaderCount = 4
        small.maxBodyBytes = 32
        let inputs: [String] = [
            "G 127.0.0.1:8080\r\nContent-Type: application/json\r\nX-Micro-Timeout: 250ms\r\nX-Micro-Meta-Tenant: acme\r\nContent-Length: 15\r\n\r\n{\"nET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /\(String(repeating: "a", count: 45)) HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: \(String(repeating: "b", count: 80))\r\n\r\n",
            String(repeating: "\r\n", count: 30) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        ]
        for input in inputs {
            let bytes = Array(input.utf8)
            let whole = outcome(bytes, slice: bytes.count, limits: small)
            #expect(whole.1 != 0, "\(input.debugDescription) must be refused")
            for slice in 1...16 {
                let sliced = outcome(bytes, slice: slice, limits: small)
                #expect(sliced.0 == whole.0 && sliced.1 == whole.1, "slice \(slice): \(sliced) vs \(whole) for \(input.debugDescription)")
            }
        }
    }

    @Test func jsonEscaping() throws {
        let escaped = HTTPServerResponse.jsonEscaped("a\"b\\c\nd\u{1}é")
        #expect(escaped == #"a\"b\\c\nd\u0001é"#)
        let decoded = try JSONSerialization.jsonObject(with: Data(("\"" + escaped + "\"").utf8), options: [.fragmentsAllowed]) as? String
        #expect(decoded == "a\"b\\c\nd\u{1}é")
    }
}
