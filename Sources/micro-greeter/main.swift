// micro-greeter: an example service (go-micro's helloworld) on the RPC layer. It registers in the registry the
// flags or environment choose (`--registry local|memory|etcd --registry_address ...`, MICRO_REGISTRY, ...),
// prints "listening <address> <node id>", and serves until SIGTERM/SIGINT, then stops gracefully.
//
// Endpoints: Greeter.Hello (JSON {"name":...} -> {"greeting":...}), Echo.Call (raw bytes back),
// Sleep.Call (raw: the body is a number of milliseconds to sleep, then "slept").
//
// usage: micro-greeter [--name greeter] [--address 127.0.0.1:0] [--version latest] [--threads 1]
//                      [--registry local] [--registry_address host:port] [--ttl seconds] [--interval seconds]
import Foundation
import MicroEventLoop
import MicroRPC
import MicroCore
import MicroRegistry
import MicroUVTransport

struct HelloRequest: Codable, Sendable { var name: String }
struct HelloResponse: Codable, Sendable { var greeting: String }

func value(_ flag: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: flag), i + 1 < args.count else { return nil }
    return args[i + 1]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

let usage = "usage: micro-greeter [--name greeter] [--address 127.0.0.1:0] [--version latest] [--threads 1] [--registry local|memory|etcd] [--registry_address host:port] [--ttl seconds] [--interval seconds]"
// Every flag takes a value; anything else is refused before the server starts.
do {
    let withValue: Set<String> = ["--name", "--address", "--version", "--threads", "--registry", "--registry_address", "--ttl", "--interval"]
    var it = CommandLine.arguments.dropFirst().makeIterator()
    while let arg = it.next() {
        if arg == "--help" || arg == "-h" {
            FileHandle.standardOutput.write(Data((usage + "\n").utf8))
            exit(0)
        }
        if arg.hasPrefix("--registry=") || arg.hasPrefix("--registry_address=") { continue }
        guard withValue.contains(arg) else { fail("micro-greeter: unknown argument \(arg) (--help for usage)") }
        guard let v = it.next() else { fail("micro-greeter: \(arg) needs a value") }
        if arg == "--threads", Int(v).map({ $0 > 0 }) != true { fail("micro-greeter: --threads needs a positive integer, not \(v)") }
        if arg == "--ttl" || arg == "--interval", Double(v).map({ $0 > 0 }) != true { fail("micro-greeter: \(arg) needs seconds (a positive number), not \(v)") }
    }
}

// First: a SIGTERM/SIGINT from now on is kept until the server is ready to stop gracefully.
let signals = AsyncSignals.install()
let name = value("--name") ?? "greeter"
let address = value("--address") ?? "127.0.0.1:0"
let threads = Int(value("--threads") ?? "1") ?? 1
let registry: any Registry
do {
    registry = try RegistryConfiguration.parse(arguments: CommandLine.arguments, environment: ProcessInfo.processInfo.environment).makeRegistry()
} catch {
    fail("micro-greeter: \(error)")
}
let group = EventLoopGroup(threads: max(1, threads))
let socketAddress: SocketAddress
do { socketAddress = try SocketAddress(address) } catch { fail("micro-greeter: bad --address \(address): \(error)") }
var configuration = ServerConfiguration(name: name)
configuration.version = value("--version") ?? "latest"
if let ttl = value("--ttl").flatMap(Double.init) { configuration.registerTTL = .milliseconds(Int64(ttl * 1000)) }
if let interval = value("--interval").flatMap(Double.init) { configuration.registerInterval = .milliseconds(Int64(interval * 1000)) }
let server = Server(configuration: configuration, transport: UVServerTransport(group: group, address: socketAddress), registry: registry)

server.handle("Greeter.Hello", HelloRequest.self) { request, _ in
    HelloResponse(greeting: "Hello, \(request.name)!")
}
server.handle("Echo.Call") { request, _ in Response(body: request.body) }
server.handle("Sleep.Call") { request, _ in
    let ms = Int(String(decoding: request.body, as: UTF8.self)) ?? 0
    try await Task.sleep(for: .milliseconds(ms))
    return Response(body: Array("slept".utf8))
}

do {
    try await server.start()
} catch {
    fail("micro-greeter: could not start: \(error)")
}
FileHandle.standardOutput.write(Data("listening \(server.serviceRecord.nodes[0].address) \(server.nodeID)\n".utf8))
// Serve until SIGTERM/SIGINT; then the server deregisters, drains and stops.
await signals.wait()
await server.shutdown()
FileHandle.standardOutput.write(Data("stopped\n".utf8))
_ = group.shutdownGracefully()
