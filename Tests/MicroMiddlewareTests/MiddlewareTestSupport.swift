import Foundation
import MicroCore
import MicroInMemory
import MicroRPC
import MicroTestSupport
import Synchronization
import Testing

// Servers and clients of the middleware tests: on the in-memory transport, no sockets.

/// The network every in-memory server of this test target listens on (each at an address of its own).
let middlewareNetwork = InMemoryNetwork()

/// An RPC server on the in-memory transport.
struct RunningServer {
    let server: Server
    var address: String { server.serviceRecord.nodes[0].address }

    static func start(
        _ name: String = "svc",
        configure: (inout ServerConfiguration) -> Void = { _ in },
        handlers: (Server) -> Void
    ) async throws -> RunningServer {
        var config = ServerConfiguration(name: name)
        configure(&config)
        let transport = InMemoryServer(network: middlewareNetwork, address: "\(name)-\(UUID().uuidString.prefix(8))")
        let server = Server(configuration: config, transport: transport)
        handlers(server)
        try await server.start()
        return RunningServer(server: server)
    }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(200))
    }
}

/// A client on the in-memory transport.
struct RunningClient {
    let transport: InMemoryTransport
    let client: Client

    static func start(selector: (any Selector)? = nil, configure: (inout ClientConfiguration) -> Void = { _ in }) -> RunningClient {
        let transport = InMemoryTransport(network: middlewareNetwork)
        var config = ClientConfiguration()
        configure(&config)
        return RunningClient(transport: transport, client: Client(transport: transport, selector: selector, configuration: config))
    }

    func stop() async { await transport.shutdown() }
}

/// An address where no in-memory server listens: connecting fails (work not started, retryable).
func deadAddress() -> String { "dead-\(UUID().uuidString)" }

/// Counts events across tasks.
final class Hits: Sendable {
    private let value = Atomic<Int>(0)
    init() {}
    func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// A switch flipped by the test and read by handlers.
final class Flag: Sendable {
    private let value: Atomic<Bool>
    init(_ on: Bool = false) { value = Atomic(on) }
    var isOn: Bool { value.load(ordering: .relaxed) }
    func set(_ on: Bool) { value.store(on, ordering: .relaxed) }
}

/// Calls at once and gives the response or the RPCError (any other error is recorded as an issue).
func outcome(_ client: Client, _ request: Request, _ options: CallOptions = CallOptions(),
             sourceLocation: SourceLocation = #_sourceLocation) async -> Result<Response, RPCError> {
    do {
        return .success(try await client.call(request, options: options))
    } catch let e as RPCError {
        return .failure(e)
    } catch {
        Issue.record("expected an RPCError, got \(error)", sourceLocation: sourceLocation)
        return .failure(RPCError(.unknown, "\(error)"))
    }
}

extension Result where Failure == RPCError {
    /// The error, nil on success.
    var rpcError: RPCError? {
        if case .failure(let e) = self { return e }
        return nil
    }

    /// The response, nil on failure.
    var response: Success? {
        if case .success(let r) = self { return r }
        return nil
    }
}

// `bytes(_:)` and `text(_:)` come from MicroTestSupport.
