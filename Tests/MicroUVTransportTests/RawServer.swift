import MicroEventLoop
import MicroCore
import MicroFraming
import Synchronization

/// A server that speaks just enough of the protocol to misbehave on purpose.
final class RawServer: @unchecked Sendable {
    enum Behaviour: Sendable {
        /// Answers with SETTINGS, then never answers anything (no PING ack, no responses).
        case silent
        /// Answers with SETTINGS, then resets the connection when a REQUEST arrives.
        case resetOnRequest
        /// Answers with SETTINGS, then on a REQUEST sends half a RESPONSE frame and closes.
        case truncateResponse
    }

    let group: EventLoopGroup
    let listener: TCPListener
    let accepted = Atomic<Int>(0)

    init(group: EventLoopGroup, listener: TCPListener) {
        self.group = group
        self.listener = listener
    }

    static func start(_ behaviour: Behaviour) async throws -> RawServer {
        let group = EventLoopGroup(threads: 1)
        let counter = Atomic<Int>(0)
        _ = counter
        let box = CounterBox()
        let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: "127.0.0.1", port: 0)) { tcp in
            box.count.add(1, ordering: .relaxed)
            let d = Misbehaving(behaviour)
            tcp.delegate = d
            tcp.startReading()
        }
        let s = RawServer(group: group, listener: listener)
        s.box = box
        return s
    }

    var box: CounterBox?
    var acceptedCount: Int { box?.count.load(ordering: .relaxed) ?? 0 }
    var address: String { listener.localAddress.description }

    func stop() -> Bool {
        group.shutdownGracefully()
    }
}

final class CounterBox: Sendable {
    let count = Atomic<Int>(0)
}

final class Misbehaving: TCPConnectionDelegate {
    let behaviour: RawServer.Behaviour
    var seen = 0
    var sentSettings = false

    init(_ behaviour: RawServer.Behaviour) { self.behaviour = behaviour }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        if !sentSettings {
            sentSettings = true
            let s = Settings()
            connection.withOutbound(reserving: FrameEncoder.settingsSize(s)) { FrameEncoder.encodeSettings(s, into: $0) }
        }
        // Preface (8) + SETTINGS (10 + 24) + SETTINGS ack (10) come first; anything beyond is a REQUEST.
        seen += bytes.count
        guard seen > 8 + 34 + 10 else { return }
        switch behaviour {
        case .silent:
            break
        case .resetOnRequest:
            connection.reset()
        case .truncateResponse:
            let head = ResponseHead()
            var full = [UInt8](repeating: 0, count: FrameEncoder.responseSize(head, messageCount: 100))
            let msg = [UInt8](repeating: 7, count: 100)
            _ = full.withUnsafeMutableBytes { p in
                msg.withUnsafeBytes { FrameEncoder.encodeResponse(stream: 1, head, message: $0, endStream: true, into: p.baseAddress!) }
            }
            connection.write(contentsOf: full.prefix(full.count / 2))
            connection.closeAfterFlush()
        }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {}
}
