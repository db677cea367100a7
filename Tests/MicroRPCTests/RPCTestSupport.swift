import Foundation
import MicroEventLoop
import MicroRPC
import MicroRegistry
import MicroSelector
import MicroTransport
import MicroUVTransport
import Synchronization
import Testing

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with `TimedOut` if it takes longer than `seconds`: no test can hang.
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String = "operation", _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            throw TimedOut(what: what)
        }
        let r = try await group.next()!
        group.cancelAll()
        return r
    }
}

/// Polls `condition` until it holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ what: String, _ condition: @escaping @Sendable () async -> Bool) async throws {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TimedOut(what: what)
}

/// An RPC server on its own loop, over loopback.
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

/// Counts what handlers saw.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

/// Records values across tasks.
final class Recorder<T: Sendable>: Sendable {
    let items = Mutex<[T]>([])
    func append(_ t: T) { items.withLock { $0.append(t) } }
    var all: [T] { items.withLock { $0 } }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
