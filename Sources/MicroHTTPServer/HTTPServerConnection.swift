import Glibc
import HTTPTypes
import MicroEventLoop

/// One HTTP connection: parses requests, runs the handler for one at a time, writes responses in order.
///
/// Loop-confined: every method runs on the connection's loop (the handler's task prefers the loop as its
/// executor, and its result is brought back to the loop if it is not there). `@unchecked Sendable` only so that
/// the handler's task and the server's close can hand it back to its loop.
final class HTTPServerConnection: TCPConnectionDelegate, @unchecked Sendable {
    let tcp: TCPConnection
    unowned let server: HTTPServer
    var loop: EventLoop { tcp.loop }
    private var parser: HTTPRequestParser
    /// A handler runs for a request; later requests wait in the parser.
    private var busy = false
    private var closed = false
    /// The server is closing: close once the response under way is written.
    private var closeWhenDone = false
    /// Set while a request's bytes arrive: its timeout runs from the first of them.
    private var requestTimerArmed = false
    private var timer: LoopTimer?
    private let remoteAddress: String
    private var dateCache = (second: 0, text: "")

    init(_ tcp: TCPConnection, server: HTTPServer) {
        self.tcp = tcp
        self.server = server
        parser = HTTPRequestParser(limits: server.configuration.limits)
        remoteAddress = tcp.remoteAddress?.description ?? "?"
    }

    func begin() {
        armTimer(idle: true)
        tcp.startReading()
    }

    /// Over the connection limit: 503, then close.
    func refuse() {
        write(HTTPServerResponse.json(.serviceUnavailable, #"{"error":"too many connections"}"#), headOnly: false, keepAlive: false, isHTTP10: false)
        tcp.closeAfterFlush()
    }

    // MARK: TCPConnectionDelegate

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        guard !closed else { return }
        parser.append(bytes)
        process()
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        closed = true
        timer?.cancel()
        timer = nil
        server.remove(self)
    }

    // MARK: requests

    private func process() {
        guard !busy, !closed, !closeWhenDone else {
            if busy && parser.bufferedBytes > server.configuration.maxPipelinedBytes { tcp.stopReading() }
            return
        }
        let request: HTTPRequestParser.Request?
        do {
            request = try parser.next()
        } catch {
            fail(error.status, error.description)
            return
        }
        guard let request else {
            if parser.takeContinueRequest() {
                Self.continueLine.withUnsafeBytes { tcp.write($0) }
            }
            if parser.isMidRequest {
                if !requestTimerArmed { armTimer(idle: false) }
            } else if requestTimerArmed {
                armTimer(idle: true)
            }
            return
        }
        busy = true
        requestTimerArmed = false
        if parser.bufferedBytes > server.configuration.maxPipelinedBytes { tcp.stopReading() }
        let handler = server.handler
        let serverRequest = HTTPServerRequest(head: request.head, body: request.body, remoteAddress: remoteAddress)
        let loop = self.loop
        Task(executorPreference: loop) {
            let response = await handler(serverRequest)
            if loop.inEventLoop {
                self.complete(response, request: request)
            } else {
                _ = loop.execute { self.complete(response, request: request) }
            }
        }
    }

    private func complete(_ response: HTTPServerResponse, request: HTTPRequestParser.Request) {
        busy = false
        guard !closed else { return }
        let keepAlive = request.keepAlive && !closeWhenDone
        write(response, headOnly: request.head.method == .head, keepAlive: keepAlive, isHTTP10: request.isHTTP10)
        if !keepAlive {
            closed = true
            tcp.closeAfterFlush()
            return
        }
        armTimer(idle: true)
        if !tcp.isReading { tcp.startReading() }
        process()
    }

    /// Answers a request that could not be read, then closes (the stream's framing is lost).
    private func fail(_ status: HTTPResponse.Status, _ why: String) {
        let body = #"{"error":"\#(HTTPServerResponse.jsonEscaped(why))"}"#
        write(HTTPServerResponse.json(status, body), headOnly: false, keepAlive: false, isHTTP10: false)
        closed = true
        tcp.closeAfterFlush()
    }

    // MARK: timeouts and closing

    /// Idle: the keep-alive timeout; else the current request's timeout (armed once, from its first byte).
    private func armTimer(idle: Bool) {
        requestTimerArmed = !idle
        let timeout = idle ? server.configuration.idleTimeout : server.configuration.requestTimeout
        let ms = UInt64(max(1, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        if let timer, !timer.isCancelled {
            timer.restart(timeout: ms)
        } else {
            timer = LoopTimer(loop: loop, timeout: ms) { [weak self] _ in self?.timerFired() }
        }
    }

    private func timerFired() {
        timer = nil
        guard !closed else { return }
        if busy {
            // The handler bounds its own time (the sidecar's calls have deadlines); look again later.
            armTimer(idle: true)
        } else if parser.isMidRequest {
            fail(.requestTimeout, "the request did not arrive in time")
        } else {
            closed = true
            tcp.close()
        }
    }

    /// The server is closing: now if no response is under way, else after it.
    func closeWhenIdle() {
        guard !closed else { return }
        if busy {
            closeWhenDone = true
        } else {
            closed = true
            tcp.close()
        }
    }

    func closeNow() {
        closed = true
        tcp.close()
    }

    // MARK: writing

    private static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)
    private static let crlf: [UInt8] = [13, 10]
    private static let colonSpace: [UInt8] = [58, 32]

    private func write(_ response: HTTPServerResponse, headOnly: Bool, keepAlive: Bool, isHTTP10: Bool) {
        let status = response.head.status
        var out: [UInt8] = []
        out.reserveCapacity(192 + response.body.count)
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(status.code).utf8)
        out.append(32)
        out.append(contentsOf: status.reasonPhrase.utf8)
        out.append(contentsOf: Self.crlf)
        for field in response.head.headerFields {
            switch field.name {
            case .contentLength, .connection, .transferEncoding, .date: continue
            default:
                out.append(contentsOf: field.name.rawName.utf8)
                out.append(contentsOf: Self.colonSpace)
                out.append(contentsOf: field.value.utf8)
                out.append(contentsOf: Self.crlf)
            }
        }
        if let serverHeader = server.configuration.serverHeader, response.head.headerFields[.server] == nil {
            out.append(contentsOf: "Server: ".utf8)
            out.append(contentsOf: serverHeader.utf8)
            out.append(contentsOf: Self.crlf)
        }
        out.append(contentsOf: "Date: ".utf8)
        out.append(contentsOf: date().utf8)
        out.append(contentsOf: Self.crlf)
        let bodyAllowed = status.code != 204 && status.code != 304 && status.kind != .informational
        if bodyAllowed {
            out.append(contentsOf: "Content-Length: ".utf8)
            out.append(contentsOf: String(response.body.count).utf8)
            out.append(contentsOf: Self.crlf)
        }
        if !keepAlive {
            out.append(contentsOf: "Connection: close\r\n".utf8)
        } else if isHTTP10 {
            out.append(contentsOf: "Connection: keep-alive\r\n".utf8)
        }
        out.append(contentsOf: Self.crlf)
        if bodyAllowed && !headOnly { out.append(contentsOf: response.body) }
        // Leaves at the end of this loop turn, batched with the other connections' output. (A raw buffer: the
        // generic write(contentsOf:) would copy byte by byte through the collection's witnesses.)
        out.withUnsafeBytes { tcp.write($0) }
    }

    /// The IMF-fixdate of now, made once a second.
    private func date() -> String {
        var now = time(nil)
        if now == dateCache.second { return dateCache.text }
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        dateCache = (now, String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        return dateCache.text
    }
}
