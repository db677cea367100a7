import MicroCore
import MicroFraming
@testable import MicroUVTransport
import Testing

/// The protocol rules of docs/PROTOCOL.md §8, on the connection's state machine alone: no sockets, no loops. (A
/// few of the same rules run over loopback in ProtocolErrorTests and ProtocolRulesTests.)
@Suite("Mux state machine")
struct MuxStateMachineTests {
    typealias M = MuxStateMachine

    static func server(maxStreams: Int = 100) -> M {
        var m = M(role: .server, maxConcurrentStreams: maxStreams)
        _ = m.receiveSettings()
        return m
    }

    static func client() -> M {
        var m = M(role: .client, maxConcurrentStreams: 100)
        _ = m.receiveSettings()
        return m
    }

    static func code(_ v: M.Verdict) -> ErrorCode? {
        if case .error(let c, _) = v { return c }
        return nil
    }

    @Test("the first frame must be SETTINGS; SETTINGS is first only once")
    func firstFrame() {
        var m = M(role: .server, maxConcurrentStreams: 10)
        #expect(Self.code(m.checkFirstFrame(isSettings: false)) == .protocolError)
        #expect(m.checkFirstFrame(isSettings: true) == .accept(unary: false))
        let first = m.receiveSettings()
        let second = m.receiveSettings()
        #expect(first)
        #expect(!second)
        #expect(m.checkFirstFrame(isSettings: false) == .accept(unary: false))
    }

    @Test("REQUEST ids must increase; a REQUEST at a client and a RESPONSE at a server are errors")
    func requestIDs() {
        var m = Self.server()
        #expect(m.receiveRequest(5) == .accept(unary: false))
        #expect(Self.code(m.receiveRequest(3)) == .protocolError)
        #expect(Self.code(m.receiveRequest(5)) == .protocolError)
        var c = Self.client()
        #expect(Self.code(c.receiveRequest(1)) == .protocolError)
        #expect(Self.code(m.receiveResponse(5, endStream: true)) == .protocolError)
    }

    @Test("beyond MAX_CONCURRENT_STREAMS a REQUEST is refused with NACK RESOURCE_EXHAUSTED, not a connection error")
    func refusal() {
        var m = Self.server(maxStreams: 2)
        for id: UInt32 in [1, 2] {
            #expect(m.receiveRequest(id) == .accept(unary: false))
            m.openServerStream(id, unary: id == 1, remoteEnded: id == 1, credit: 0)
        }
        guard case .refuse(.nack(true, let code, _)) = m.receiveRequest(3) else {
            Issue.record("expected a restartable NACK")
            return
        }
        #expect(StatusCode(rawValue: code) == .resourceExhausted)
        // A stream that ends makes room again.
        m.streamClosed(1)
        #expect(m.receiveRequest(4) == .accept(unary: false))
    }

    @Test("after the client's END_STREAM, DATA or END is PROTOCOL_ERROR: the same for a unary call and a stream")
    func afterEndStream() {
        for unary in [true, false] {
            var m = Self.server()
            _ = m.receiveRequest(1)
            m.openServerStream(1, unary: unary, remoteEnded: true, credit: 65_535)
            #expect(m.receiveData(1, endStream: false) == .error(.protocolError, "DATA after the end of stream 1"), "unary: \(unary)")
            #expect(m.receiveEnd(1, hasHead: false) == .error(.protocolError, "END after the end of stream 1"), "unary: \(unary)")
            #expect(m.receiveWindow(1, increment: 10) == .accept(unary: unary))
        }
    }

    @Test("a long-form stream takes DATA until its END_STREAM; then the rule above applies")
    func longForm() {
        var m = Self.server()
        _ = m.receiveRequest(1)
        m.openServerStream(1, unary: false, remoteEnded: false, credit: 0)
        #expect(m.receiveData(1, endStream: false) == .accept(unary: false))
        #expect(m.receiveData(1, endStream: true) == .accept(unary: false))
        #expect(Self.code(m.receiveData(1, endStream: false)) == .protocolError)
    }

    @Test("WINDOW overflow on a unary call is FLOW_CONTROL_ERROR; WINDOW on stream 0 is ignored")
    func windowOverflow() {
        var m = Self.server()
        _ = m.receiveRequest(1)
        m.openServerStream(1, unary: true, remoteEnded: true, credit: 65_535)
        #expect(Self.code(m.receiveWindow(1, increment: UInt32(Int32.max))) == .flowControlError)
        #expect(m.receiveWindow(0, increment: 1) == .ignore)
    }

    @Test("frames for a closed stream are ignored; for an idle stream they are PROTOCOL_ERROR")
    func closedAndIdle() {
        var m = Self.server()
        _ = m.receiveRequest(1)
        m.openServerStream(1, unary: true, remoteEnded: true, credit: 0)
        m.streamClosed(1)  // answered
        #expect(m.receiveData(1, endStream: false) == .ignore)
        #expect(m.receiveEnd(1, hasHead: false) == .ignore)
        #expect(m.receiveCancel(1) == .ignore)
        #expect(m.receiveWindow(1, increment: 5) == .ignore)
        #expect(m.receiveData(9, endStream: false) == .error(.protocolError, "DATA for stream 9, which was never opened"))
        #expect(Self.code(m.receiveCancel(9)) == .protocolError)
    }

    @Test("CANCEL closes an open stream at once; a second CANCEL is a late frame")
    func cancel() {
        var m = Self.server()
        _ = m.receiveRequest(1)
        m.openServerStream(1, unary: true, remoteEnded: true, credit: 0)
        #expect(m.openCount == 1)
        #expect(m.receiveCancel(1) == .accept(unary: true))
        #expect(m.openCount == 0)
        #expect(m.receiveCancel(1) == .ignore)
    }

    @Test("after the server's DRAIN, REQUESTs above its last stream are ignored (not processed); the limit never rises")
    func drain() {
        var m = Self.server()
        _ = m.receiveRequest(1)
        m.openServerStream(1, unary: false, remoteEnded: false, credit: 0)
        m.beginDrain()
        #expect(m.drainLimit == 1)
        #expect(m.receiveRequest(2) == .ignore)
        #expect(m.receiveData(1, endStream: true) == .accept(unary: false), "streams below the limit go on")
        m.close()
        #expect(m.drainLimit == 1)
        #expect(m.openCount == 0)
    }

    @Test("client: DATA before RESPONSE and a second RESPONSE are errors; END must carry a status")
    func clientRules() {
        var c = Self.client()
        let s = c.openClientStream(unary: false)
        #expect(c.receiveData(s, endStream: false) == .error(.protocolError, "DATA before RESPONSE on stream \(s)"))
        #expect(Self.code(c.receiveEnd(s, hasHead: false)) == .protocolError)
        #expect(c.receiveResponse(s, endStream: false) == .accept(unary: false))
        #expect(c.receiveResponse(s, endStream: false) == .error(.protocolError, "second RESPONSE on stream \(s)"))
        #expect(c.receiveData(s, endStream: false) == .accept(unary: false))
        #expect(c.receiveEnd(s, hasHead: true) == .accept(unary: false))
        #expect(c.openCount == 0)
        let u = c.openClientStream(unary: true)
        #expect(u == s + 1)
        #expect(c.receiveResponse(u, endStream: true) == .accept(unary: true))
        #expect(c.openCount == 0, "the server's end closes the stream at the client")
        #expect(c.receiveData(u, endStream: false) == .ignore, "a late frame for a closed stream")
        #expect(Self.code(c.receiveResponse(u + 5, endStream: true)) == .protocolError, "idle stream")
    }

    @Test("client: after the peer's DRAIN no new streams; streams above its limit are reported")
    func clientDrain() {
        var c = Self.client()
        let a = c.openClientStream(unary: true)
        let b = c.openClientStream(unary: false)
        c.receiveDrain(lastStream: a)
        #expect(!c.acceptsNewStreams)
        #expect(c.open(above: a) == [b])
    }
}
