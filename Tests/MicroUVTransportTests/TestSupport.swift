@_exported import MicroTestSupport
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport
import Synchronization
import Testing

/// A server and a client on their own loops, torn down clean.
struct Harness {
    let serverGroup: EventLoopGroup
    let clientGroup: EventLoopGroup
    let server: UVServerTransport
    let client: UVClientTransport
    let address: String

    static func start(
        server serverConfig: UVTransportConfiguration = UVTransportConfiguration(),
        client clientConfig: UVTransportConfiguration = UVTransportConfiguration(),
        handler: @escaping @Sendable (ServerStream) async -> Void = Harness.echo
    ) async throws -> Harness {
        try await start(server: serverConfig, client: clientConfig, serverHandler: StreamHandler(handler))
    }

    static func start(
        server serverConfig: UVTransportConfiguration = UVTransportConfiguration(),
        client clientConfig: UVTransportConfiguration = UVTransportConfiguration(),
        serverHandler handler: any ServerHandler
    ) async throws -> Harness {
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let server = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0), configuration: serverConfig)
        try await server.serve(handler)
        let client = UVClientTransport(group: clientGroup, configuration: clientConfig)
        return Harness(serverGroup: serverGroup, clientGroup: clientGroup, server: server, client: client,
                       address: server.localAddress!.description)
    }

    @Sendable static func echo(_ stream: ServerStream) async {
        let m = (try? await stream.receive()) ?? nil
        try? await stream.respond(m ?? [])
    }

    func stop() async {
        await client.shutdown()
        await server.drain(gracePeriod: .milliseconds(100))
        #expect(clientGroup.shutdownGracefully(), "client loops must close clean")
        #expect(serverGroup.shutdownGracefully(), "server loops must close clean")
    }
}

/// A raw TCP peer for protocol tests: collects every byte it receives.
final class RawPeer: TCPConnectionDelegate, @unchecked Sendable {
    let received = Mutex<[UInt8]>([])
    let closed = Mutex<Bool>(false)
    var connection: TCPConnection!

    static func connect(_ loop: EventLoop, _ address: SocketAddress) async throws -> RawPeer {
        let tcp = try await TCPConnection.connect(on: loop, to: address)
        let peer = RawPeer()
        try await loop.submit {
            peer.connection = tcp
            tcp.delegate = peer
            tcp.startReading()
        }
        return peer
    }

    func send(_ bytes: [UInt8]) async throws {
        let c = connection!
        try await c.loop.submit { c.write(contentsOf: bytes) }
    }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        received.withLock { $0.append(contentsOf: bytes) }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        closed.withLock { $0 = true }
    }

    var isClosed: Bool { closed.withLock { $0 } }

    /// Decodes the frames received so far (skipping nothing: the server sends no preface).
    func frames() -> [(FrameType?, UInt32, [UInt8])] {
        let bytes = received.withLock { $0 }
        var out: [(FrameType?, UInt32, [UInt8])] = []
        var i = 0
        while i + FrameHeader.size <= bytes.count {
            let h = bytes.withUnsafeBytes { FrameHeader.read(from: $0.baseAddress! + i) }
            let end = i + FrameHeader.size + Int(h.length)
            guard end <= bytes.count else { break }
            out.append((FrameType(rawValue: h.type), h.streamID, Array(bytes[(i + FrameHeader.size)..<end])))
            i = end
        }
        return out
    }
}

func encode(_ body: (UnsafeMutableRawPointer) -> Int, capacity: Int = 1 << 16) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: capacity) { buf, n in n = body(buf.baseAddress!) }
}
