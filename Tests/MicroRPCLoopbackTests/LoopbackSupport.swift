@_exported import MicroTestSupport
import Foundation
import MicroEventLoop
import MicroRPC
import MicroCore
import MicroRegistry
import MicroSelector
import MicroUVTransport
import Synchronization
import Testing

/// An RPC server on its own loop, over loopback (the libuv transport).
struct RunningServer {
    let group: EventLoopGroup
    let server: Server
    var address: String { server.serviceRecord.nodes[0].address }

    static func start(
        _ name: String = "svc",
        registry: (any Registry)? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        handlers: (Server) -> Void
    ) async throws -> RunningServer {
        let group = EventLoopGroup(threads: 1)
        var config = ServerConfiguration(name: name)
        configure(&config)
        let transport = UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0))
        let server = Server(configuration: config, transport: transport, registry: registry)
        handlers(server)
        try await server.start()
        return RunningServer(group: group, server: server)
    }

    func stop(grace: Duration = .milliseconds(200)) async {
        await server.shutdown(gracePeriod: grace)
        #expect(group.shutdownGracefully(), "server loops must close clean")
    }
}

/// A client on its own loop.
struct RunningClient {
    let group: EventLoopGroup
    let transport: UVClientTransport
    let client: Client

    static func start(selector: (any Selector)? = nil, configure: (inout ClientConfiguration) -> Void = { _ in }) -> RunningClient {
        let group = EventLoopGroup(threads: 1)
        let transport = UVClientTransport(group: group)
        var config = ClientConfiguration()
        configure(&config)
        return RunningClient(group: group, transport: transport, client: Client(transport: transport, selector: selector, configuration: config))
    }

    func stop() async {
        await transport.shutdown()
        #expect(group.shutdownGracefully(), "client loops must close clean")
    }
}

