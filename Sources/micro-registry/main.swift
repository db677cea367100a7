// micro-registry: registers, lists, gets and watches services in the configured registry.
//
//   micro-registry [--registry local|etcd|memory] [--registry_address host:port,...] COMMAND
//     list                                   every service, one line per version
//     get SERVICE                            the service as JSON
//     register SERVICE NODE-ID ADDRESS [--version V] [--ttl SECONDS] [--meta K=V]... [--hold]
//                                            --hold keeps the registration alive (re-registers at a third of
//                                            the TTL) until killed, as a server would
//     deregister SERVICE NODE-ID
//     watch [SERVICE] [--count N]            prints events as JSON lines (N events, then exits)
import Foundation
import MicroCore
import MicroRegistry

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}

func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

func json<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

var args = Array(CommandLine.arguments.dropFirst())
if args.contains("--help") || args.contains("-h") {
    printLine("""
    usage: micro-registry [--registry local|etcd|memory] [--registry_address host:port,...] COMMAND
      list | get SERVICE | register SERVICE NODE-ID ADDRESS [--version V] [--ttl SECONDS] [--meta K=V]... [--hold]
      deregister SERVICE NODE-ID | watch [SERVICE] [--count N]
    """)
    exit(0)
}
let configuration: RegistryConfiguration
do {
    configuration = try RegistryConfiguration.parse(arguments: args, environment: ProcessInfo.processInfo.environment)
} catch {
    fail("\(error)")
}
// Drop the registry flags; what remains is the command.
var rest: [String] = []
var i = 0
while i < args.count {
    if args[i] == "--registry" || args[i] == "--registry_address" { i += 2; continue }
    if args[i].hasPrefix("--registry=") || args[i].hasPrefix("--registry_address=") { i += 1; continue }
    rest.append(args[i])
    i += 1
}

@MainActor func option(_ name: String) -> String? {
    guard let i = rest.firstIndex(of: name), i + 1 < rest.count else { return nil }
    let value = rest[i + 1]
    rest.removeSubrange(i...(i + 1))
    return value
}

@MainActor func flag(_ name: String) -> Bool {
    guard let i = rest.firstIndex(of: name) else { return false }
    rest.remove(at: i)
    return true
}

let registry: any Registry
do {
    registry = try configuration.makeRegistry()
} catch {
    fail("\(error)")
}

guard let command = rest.first else { fail("usage: micro-registry [--registry KIND] list|get|register|deregister|watch ...") }
rest.removeFirst()

do {
    switch command {
    case "list":
        for service in try await registry.listServices() {
            printLine("\(service.name) \(service.version) \(service.nodes.map(\.address).joined(separator: ","))")
        }
    case "get":
        guard let name = rest.first else { fail("get SERVICE") }
        printLine(json(try await registry.getService(name)))
    case "register":
        let version = option("--version") ?? "latest"
        let ttl = option("--ttl").flatMap(Double.init)
        var meta: [String: String] = [:]
        while let kv = option("--meta") {
            let parts = kv.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { meta[String(parts[0])] = String(parts[1]) }
        }
        let hold = flag("--hold")
        guard rest.count == 3 else { fail("register SERVICE NODE-ID ADDRESS") }
        let service = Service(name: rest[0], version: version, nodes: [Node(id: rest[1], address: rest[2], metadata: meta)])
        let options = RegisterOptions(ttl: ttl.map { .milliseconds(Int64($0 * 1000)) })
        try await registry.register(service, options: options)
        printLine("registered")
        while hold {
            try await Task.sleep(for: .milliseconds(Int64((ttl ?? 30) * 1000 / 3)))
            try? await registry.register(service, options: options)
        }
    case "deregister":
        guard rest.count == 2 else { fail("deregister SERVICE NODE-ID") }
        try await registry.deregister(Service(name: rest[0], nodes: [Node(id: rest[1], address: "")]))
    case "watch":
        let count = option("--count").flatMap(Int.init)
        let watcher = try await registry.watch(WatchOptions(service: rest.first))
        printLine("watching")
        var seen = 0
        for try await event in watcher {
            printLine("\(event.kind.rawValue) \(json(event.service))")
            seen += 1
            if let count, seen >= count { break }
        }
        watcher.stop()
    default:
        fail("unknown command \(command)")
    }
} catch {
    fail("\(error)")
}
exit(0)
