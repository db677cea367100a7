@_exported import MicroTestSupport
import Foundation
import MicroCore
import MicroInMemory
import MicroRPC

/// The network every in-memory server of this test process listens on (each at an address of its own).
let testNetwork = InMemoryNetwork()

/// An RPC server on the in-memory transport: MicroRPC's unit tests run without sockets.
struct RunningServer {
    let server: Server
    var address: String { server.serviceRecord.nodes[0].address }

    static func start(
        _ name: String = "svc",
        registry: (any Registry)? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        handlers: (Server) -> Void
    ) async throws -> RunningServer {
        var config = ServerConfiguration(name: name)
        configure(&config)
        let transport = InMemoryServer(network: testNetwork, address: "\(name)-\(UUID().uuidString.prefix(8))")
        let server = Server(configuration: config, transport: transport, registry: registry)
        handlers(server)
        try await server.start()
        return RunningServer(server: server)
    }

    func stop(grace: Duration = .milliseconds(200)) async {
        await server.shutdown(gracePeriod: grace)
    }
}

/// A client on the in-memory transport.
struct RunningClient {
    let transport: InMemoryTransport
    let client: Client

    static func start(selector: (any Selector)? = nil, configure: (inout ClientConfiguration) -> Void = { _ in }) -> RunningClient {
        let transport = InMemoryTransport(network: testNetwork)
        var config = ClientConfiguration()
        configure(&config)
        return RunningClient(transport: transport, client: Client(transport: transport, selector: selector, configuration: config))
    }

    func stop() async { await transport.shutdown() }
}
