public import HTTPTypes

/// Parses HTTP/1.1 (and 1.0) requests from bytes fed in any slicing, one whole request at a time: the head, then
/// the body framed by `Content-Length` or `Transfer-Encoding: chunked`, within ``HTTPRequestLimits``.
///
/// Pure (no I/O). Pipelined requests stay buffered until ``next()`` is asked for them. Strict where leniency lets
/// two parsers disagree (request smuggling): a request with both `Content-Length` and `Transfer-Encoding`, with a
/// transfer coding other than `chunked`, with differing lengths, with whitespace before a field's colon or with a
/// folded field is refused. Accepted: bare LF line ends, empty lines before the request line (RFC 9112 §2.2).
/// Not supported: `CONNECT`/upgrades (refused with 501); trailers are read and dropped.
public struct HTTPRequestParser: Sendable {
    /// One complete request.
    public struct Request: Sendable {
        public var head: HTTPRequest
        public var body: [UInt8]
        /// Whether the connection may carry another request after this one's response.
        public var keepAlive: Bool
        /// `HTTP/1.0` (else 1.1).
        public var isHTTP10: Bool
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    public let limits: HTTPRequestLimits
    private var buffer: [UInt8] = []
    /// Where unparsed bytes start in `buffer`.
    private var start = 0
    private var state = State.head
    /// The request whose body is being read.
    private var pending: Request?
    private var trailerBytes = 0
    /// Progress of the search for the head's end, as offsets from `start` (-1: none yet).
    private var scanned = 0
    private var scanLineStart = -1
    private var firstLineStart = -1
    private var methodScanned = false
    private var continueRequested = false

    public init(limits: HTTPRequestLimits = HTTPRequestLimits()) {
        self.limits = limits
    }

    /// Bytes received and not yet parsed into a request (pipelined requests wait here).
    public var bufferedBytes: Int { buffer.count - start }

    /// Whether a request has begun and is not complete: its timeout runs.
    public var isMidRequest: Bool {
        if case .head = state { return bufferedBytes > 0 && !onlyEmptyLines } else { return true }
    }

    private var onlyEmptyLines: Bool { buffer[start...].allSatisfy { $0 == 13 || $0 == 10 } }

    /// True once per request whose head asked `Expect: 100-continue` and whose body has not arrived: the server
    /// answers `100 Continue` so that the client sends it.
    public mutating func takeContinueRequest() -> Bool {
        defer { continueRequested = false }
        return continueRequested
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete request, nil when more bytes are needed. After an error the parser is unusable: answer
    /// the error's status and close the connection.
    public mutating func next() throws(HTTPParseError) -> Request? {
        while true {
            switch state {
            case .head:
                guard try parseHead() else { return nil }
            case .fixed(let remaining):
                let available = buffer.count - start
                let take = min(available, remaining)
                pending!.body.append(contentsOf: buffer[start..<(start + take)])
                start += take
                if take < remaining {
                    state = .fixed(remaining: remaining - take)
                    return nil
                }
                return finish()
            case .chunkSize:
                guard let line = try takeLine(limit: 1024, tooLong: .badRequest("chunk size line too long")) else { return nil }
                let sizePart = line.prefix { $0 != UInt8(ascii: ";") }
                let trimmed = sizePart.drop { $0 == 32 || $0 == 9 }.reversed().drop { $0 == 32 || $0 == 9 }.reversed()
                guard !trimmed.isEmpty, trimmed.count <= 8, let size = Int(String(decoding: trimmed, as: UTF8.self), radix: 16), size >= 0 else {
                    throw .badRequest("bad chunk size")
                }
                if size == 0 {
                    state = .trailers
                    trailerBytes = 0
                } else {
                    guard pending!.body.count + size <= limits.maxBodyBytes else { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let available = buffer.count - start
                let take = min(available, remaining)
                pending!.body.append(contentsOf: buffer[start..<(start + take)])
                start += take
                if take < remaining {
                    state = .chunkData(remaining: remaining - take)
                    return nil
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard let line = try takeLine(limit: 2, tooLong: .badRequest("chunk data longer than its size")) else { return nil }
                guard line.isEmpty else { throw .badRequest("chunk data longer than its size") }
                state = .chunkSize
            case .trailers:
                guard let line = try takeLine(limit: limits.maxHeaderBytes, tooLong: .headersTooLarge(limit: limits.maxHeaderBytes)) else { return nil }
                trailerBytes += line.count + 2
                if trailerBytes > limits.maxHeaderBytes { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
                if line.isEmpty { return finish() }
            }
        }
    }

    private mutating func finish() -> Request {
        state = .head
        let request = pending!
        pending = nil
        continueRequested = false
        return request
    }

    /// The next line without its CR LF (or bare LF), or nil when it has not arrived; throws `tooLong` when `limit`
    /// bytes arrived without a line end. A bare CR inside a line is refused.
    private mutating func takeLine(limit: Int, tooLong: HTTPParseError) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        let end = min(buffer.count, start + limit + 2)
        var i = start
        while i < end {
            if buffer[i] == 10 {
                var lineEnd = i
                if lineEnd > start && buffer[lineEnd - 1] == 13 { lineEnd -= 1 }
                let line = buffer[start..<lineEnd]
                if line.contains(13) { throw .badRequest("bare CR in a line") }
                start = i + 1
                return line
            }
            i += 1
        }
        if buffer.count - start > limit + 1 { throw tooLong }
        return nil
    }

    /// Parses the head once all of it arrived; false while it has not.
    private mutating func parseHead() throws(HTTPParseError) -> Bool {
        // The whole head must be here before any of it is parsed (then nothing is parsed twice).
        guard try findHeadEnd() else { return false }
        // Empty lines before the request line are ignored.
        while start < buffer.count, buffer[start] == 13 || buffer[start] == 10 { start += 1 }
        guard let requestLine = try takeLine(limit: limits.maxRequestLineBytes, tooLong: .uriTooLong(limit: limits.maxRequestLineBytes)) else {
            return false
        }
        let parts = requestLine.split(separator: 32, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw .badRequest("malformed request line") }
        guard parts[0].allSatisfy(Self.isTokenChar) else { throw .badRequest("bad method") }
        guard parts[1].allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .badRequest("bad request target") }
        let version = parts[2]
        let isHTTP10: Bool
        if version.elementsEqual("HTTP/1.1".utf8) {
            isHTTP10 = false
        } else if version.elementsEqual("HTTP/1.0".utf8) {
            isHTTP10 = true
        } else if version.starts(with: "HTTP/".utf8), version.count == 8, version.dropFirst(5).first.map({ $0 >= 48 && $0 <= 57 }) == true {
            throw .versionNotSupported
        } else {
            throw .badRequest("bad HTTP version")
        }
        let methodText = String(decoding: parts[0], as: UTF8.self)
        guard let method = HTTPRequest.Method(methodText) else { throw .badRequest("bad method") }
        if method == .connect { throw .notImplemented("CONNECT") }
        let target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") || target == "*" else { throw .badRequest("only origin-form request targets are served") }

        var fields = HTTPFields()
        var headerBytes = 0
        var host: String?
        var contentLength: Int?
        var transferEncoding: [String] = []
        var connectionTokens: [String] = []
        var expectContinue = false
        while true {
            guard let line = try takeLine(limit: limits.maxHeaderBytes, tooLong: .headersTooLarge(limit: limits.maxHeaderBytes)) else {
                throw .badRequest("truncated head")  // unreachable: the head end was found
            }
            if line.isEmpty { break }
            headerBytes += line.count + 2
            if headerBytes > limits.maxHeaderBytes { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
            if fields.count >= limits.maxHeaderCount { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
            if line.first == 32 || line.first == 9 { throw .badRequest("folded header field") }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .badRequest("header field without colon") }
            let nameBytes = line[line.startIndex..<colon]
            guard !nameBytes.isEmpty, nameBytes.allSatisfy(Self.isTokenChar) else { throw .badRequest("bad header field name") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
            while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
            guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else { throw .badRequest("bad header field value") }
            let nameText = String(decoding: nameBytes, as: UTF8.self)
            guard let name = HTTPField.Name(nameText) else { throw .badRequest("bad header field name") }
            let valueText = String(decoding: value, as: UTF8.self)
            fields.append(HTTPField(name: name, value: valueText))
            switch name.canonicalName {
            case "host":
                if host != nil { throw .badRequest("more than one Host") }
                host = valueText
            case "content-length":
                // Digits, or a list of equal numbers ("3, 3"), read from the bytes.
                for item in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                    var digits = item[...]
                    while let f = digits.first, f == 32 || f == 9 { digits = digits.dropFirst() }
                    while let l = digits.last, l == 32 || l == 9 { digits = digits.dropLast() }
                    guard !digits.isEmpty, digits.count <= 18 else { throw .badRequest("bad Content-Length") }
                    var n = 0
                    for d in digits {
                        guard d >= 48 && d <= 57 else { throw .badRequest("bad Content-Length") }
                        n = n * 10 + Int(d - 48)
                    }
                    if let contentLength, contentLength != n { throw .badRequest("conflicting Content-Length") }
                    contentLength = n
                }
            case "transfer-encoding":
                transferEncoding += valueText.split(separator: ",").map { $0.trimmingCharacters(in: " \t").lowercased() }
            case "connection":
                connectionTokens += valueText.split(separator: ",").map { $0.trimmingCharacters(in: " \t").lowercased() }
            case "expect":
                if valueText.lowercased() == "100-continue" { expectContinue = true } else { throw .expectationFailed }
            default:
                break
            }
        }
        if !isHTTP10 && host == nil { throw .badRequest("no Host header") }
        if !transferEncoding.isEmpty {
            if isHTTP10 { throw .badRequest("Transfer-Encoding in HTTP/1.0") }
            if contentLength != nil { throw .badRequest("both Content-Length and Transfer-Encoding") }
            guard transferEncoding == ["chunked"] else { throw .notImplemented("Transfer-Encoding \(transferEncoding.joined(separator: ", "))") }
        }
        if let contentLength, contentLength > limits.maxBodyBytes { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
        let keepAlive = isHTTP10 ? connectionTokens.contains("keep-alive") : !connectionTokens.contains("close")
        var path = target
        if path == "*" && method != .options { throw .badRequest("* is only for OPTIONS") }
        if path.isEmpty { path = "/" }
        let head = HTTPRequest(method: method, scheme: nil, authority: host, path: path, headerFields: fields)
        var request = Request(head: head, body: [], keepAlive: keepAlive, isHTTP10: isHTTP10)
        request.body.reserveCapacity(min(contentLength ?? 0, 1 << 16))
        pending = request
        scanned = 0
        scanLineStart = -1
        firstLineStart = -1
        methodScanned = false
        if expectContinue && (contentLength ?? 0 > 0 || transferEncoding == ["chunked"]) { continueRequested = true }
        if transferEncoding == ["chunked"] {
            state = .chunkSize
        } else {
            state = .fixed(remaining: contentLength ?? 0)
        }
        return true
    }

    /// Whether the blank line that ends the head has arrived (empty lines before the request line do not count).
    /// Scans each byte once however the head is sliced (`scanned`, `scanLineStart` and `firstLineStart` are
    /// offsets from `start`), and throws as soon as the request line or the head is too long.
    private mutating func findHeadEnd() throws(HTTPParseError) -> Bool {
        var i = start + scanned
        var lineStart: Int? = scanLineStart < 0 ? nil : start + scanLineStart
        var firstLine: Int? = firstLineStart < 0 ? nil : start + firstLineStart
        // Every limit is checked at the byte that passes it, so that an error does not depend on how the bytes
        // were sliced.
        while i < buffer.count {
            let c = buffer[i]
            if lineStart == nil {
                if c == 13 || c == 10 {
                    if i - start >= limits.maxRequestLineBytes { throw .badRequest("empty lines instead of a request") }
                    i += 1
                    continue
                }
                lineStart = i
                firstLine = i
            }
            // The method, byte by byte: a peer that speaks something else (TLS, binary) is refused at once.
            if !methodScanned, lineStart == firstLine {
                if c == 32 {
                    methodScanned = true
                } else if !Self.isTokenChar(c) {
                    throw .badRequest("not an HTTP request")
                }
            }
            if c == 10 {
                var length = i - lineStart!
                if length > 0 && buffer[i - 1] == 13 { length -= 1 }
                if length == 0 { return true }
                lineStart = i + 1
            } else if lineStart == firstLine, i - lineStart! > limits.maxRequestLineBytes {
                throw .uriTooLong(limit: limits.maxRequestLineBytes)
            }
            if i - firstLine! > limits.maxRequestLineBytes + limits.maxHeaderBytes + 2 {
                throw .headersTooLarge(limit: limits.maxHeaderBytes)
            }
            i += 1
        }
        scanned = i - start
        scanLineStart = lineStart.map { $0 - start } ?? -1
        firstLineStart = firstLine.map { $0 - start } ?? -1
        return false
    }

    /// RFC 9110 tchar.
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
