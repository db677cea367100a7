/// Parses one HTTP/1.1 response from bytes fed in any slicing: the head, then the body framed by
/// `Content-Length`, `Transfer-Encoding: chunked`, or the end of the connection.
///
/// Pure (no I/O). Body bytes are handed out as they arrive, so a long-lived chunked response (a watch stream)
/// is delivered piece by piece. Informational (1xx) responses are skipped. Not supported: responses to HEAD,
/// trailers' contents (they are read and dropped), pipelining (bytes after the response are ignored).
public struct HTTPResponseParser: Sendable {
    public enum Event: Sendable, Equatable {
        case head(HTTPResponseHead)
        case body([UInt8])
        case end
    }

    enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case done
    }

    /// Limits against a peer that never ends a line.
    public static let maxHeadBytes = 64 * 1024
    static let maxLineBytes = 4 * 1024

    private var state = State.head
    private var line: [UInt8] = []

    public init() {}

    /// Whether the whole response has been parsed.
    public var isComplete: Bool { if case .done = state { true } else { false } }

    /// Parses `bytes`, calling `emit` for each event in order.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) throws -> Void) throws {
        var i = 0
        let n = bytes.count
        while i < n {
            switch state {
            case .done:
                return
            case .head:
                line.append(bytes[i])
                i += 1
                if line.count > Self.maxHeadBytes { throw HTTPError.malformedResponse("head longer than \(Self.maxHeadBytes) bytes") }
                if line.count >= 4 && line[line.count - 4] == 13 && line[line.count - 3] == 10
                    && line[line.count - 2] == 13 && line[line.count - 1] == 10 {
                    let head = try Self.parseHead(line)
                    line.removeAll(keepingCapacity: true)
                    if head.status >= 100 && head.status < 200 { continue }
                    try emit(.head(head))
                    state = try Self.bodyState(for: head)
                    if case .done = state { try emit(.end) }
                }
            case .fixed(let remaining):
                let take = min(remaining, n - i)
                try emit(.body(Array(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))))
                i += take
                if remaining == take {
                    state = .done
                    try emit(.end)
                } else {
                    state = .fixed(remaining: remaining - take)
                }
            case .untilClose:
                try emit(.body(Array(UnsafeRawBufferPointer(rebasing: bytes[i..<n]))))
                i = n
            case .chunkSize:
                let b = bytes[i]
                i += 1
                if b == 10 {
                    let size = try Self.parseChunkSize(line)
                    line.removeAll(keepingCapacity: true)
                    state = size == 0 ? .trailers : .chunkData(remaining: size)
                } else {
                    line.append(b)
                    if line.count > Self.maxLineBytes { throw HTTPError.malformedResponse("chunk-size line too long") }
                }
            case .chunkData(let remaining):
                let take = min(remaining, n - i)
                try emit(.body(Array(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))))
                i += take
                state = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                let b = bytes[i]
                i += 1
                if b == 10 {
                    state = .chunkSize
                } else if b != 13 {
                    throw HTTPError.malformedResponse("no CRLF after chunk data")
                }
            case .trailers:
                let b = bytes[i]
                i += 1
                if b == 10 {
                    let empty = line.isEmpty || line == [13]
                    line.removeAll(keepingCapacity: true)
                    if empty {
                        state = .done
                        try emit(.end)
                    }
                } else {
                    line.append(b)
                    if line.count > Self.maxLineBytes { throw HTTPError.malformedResponse("trailer line too long") }
                }
            }
        }
    }

    /// The connection ended. Emits `.end` when that completes a body delimited by the close; throws when the
    /// response was cut short.
    public mutating func finish(_ emit: (Event) throws -> Void) throws {
        switch state {
        case .done: return
        case .untilClose:
            state = .done
            try emit(.end)
        case .head:
            throw HTTPError.connectionClosed(line.isEmpty ? "no response" : "in the response head")
        default:
            throw HTTPError.connectionClosed("in the response body")
        }
    }

    static func parseHead(_ bytes: [UInt8]) throws -> HTTPResponseHead {
        let text = String(decoding: bytes.dropLast(4), as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard !lines.isEmpty else { throw HTTPError.malformedResponse("empty head") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...999).contains(status) else {
            throw HTTPError.malformedResponse("bad status line \(statusLine.prefix(80))")
        }
        var headers: [String: String] = [:]
        // Field names are case-insensitive; repeated fields combine in order with ", " (RFC 9110 §5.3), so a
        // lookup finds one deterministic value whatever the dictionary's order.
        var keyFor: [String: String] = [:]
        for l in lines where !l.isEmpty {
            guard let colon = l.firstIndex(of: ":") else { throw HTTPError.malformedResponse("bad header line") }
            let name = String(l[..<colon])
            let value = l[l.index(after: colon)...].trimmingSpaces()
            let folded = name.lowercased()
            if let key = keyFor[folded], let earlier = headers[key] {
                headers[key] = earlier + ", " + value
            } else {
                keyFor[folded] = name
                headers[name] = value
            }
        }
        return HTTPResponseHead(status: status, reason: parts.count > 2 ? String(parts[2]) : "", headers: headers)
    }

    static func bodyState(for head: HTTPResponseHead) throws -> State {
        if head.status == 204 || head.status == 304 { return .done }
        if let te = head.header("Transfer-Encoding"), te.lowercased().contains("chunked") { return .chunkSize }
        if let cl = head.header("Content-Length") {
            guard let length = Int(cl), length >= 0 else { throw HTTPError.malformedResponse("bad Content-Length \(cl)") }
            return length == 0 ? .done : .fixed(remaining: length)
        }
        return .untilClose
    }

    static func parseChunkSize(_ line: [UInt8]) throws -> Int {
        var size = 0
        var digits = 0
        for b in line {
            let v: Int
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(b - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), 13, UInt8(ascii: " "):
                guard digits > 0 else { throw HTTPError.malformedResponse("empty chunk size") }
                return size
            default: throw HTTPError.malformedResponse("bad chunk size")
            }
            digits += 1
            guard digits <= 15 else { throw HTTPError.malformedResponse("chunk size too large") }
            size = size * 16 + v
        }
        guard digits > 0 else { throw HTTPError.malformedResponse("empty chunk size") }
        return size
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
