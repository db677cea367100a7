import ArgumentParser
import Foundation
import Micro
import MicroCore

/// `micro registry list|get|register|deregister|watch`: the registry itself.
struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "List, get, register, deregister and watch services in the registry.",
        subcommands: [List.self, Get.self, Register.self, Deregister.self, Watch.self]
    )

    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every service, one line per version: name, version, node addresses.")
        @OptionGroup var flags: ServiceFlags
        func run() async throws { try await listServices(flags) }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A service's records as one line of JSON.")
        @OptionGroup var flags: ServiceFlags
        @Argument var service: String
        func run() async throws {
            try await withService(flags) { micro in
                try await requireService(service, in: micro)
                say(RegistryCommand.json(try await micro.registry.getService(service)))
            }
        }
    }

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a node of a service.",
            discussion: "With --hold, keeps the registration alive (renewed at a third of the TTL) until killed, as a server would."
        )
        @OptionGroup var flags: ServiceFlags
        @Argument var service: String
        @Argument var nodeID: String
        @Argument(help: "host:port") var address: String
        @Option var version = "latest"
        @Option(help: "Seconds.") var ttl: Double?
        @Option(help: "Node metadata key=value (repeatable).") var meta: [String] = []
        @Flag var hold = false

        func validate() throws {
            if let ttl, !(ttl > 0 && ttl <= 86_400) { throw ValidationError("--ttl needs seconds (0 to 86400), not \(ttl)") }
        }

        func run() async throws {
            var metadata: [String: String] = [:]
            for (k, v) in try parseMetadata(meta) { metadata[k] = v }
            try await withService(flags) { micro in
                let record = Service(name: service, version: version, nodes: [Node(id: nodeID, address: address, metadata: metadata)])
                let options = RegisterOptions(ttl: ttl.map { .milliseconds(Int64($0 * 1000)) })
                try await micro.registry.register(record, options: options)
                say("registered")
                while hold {
                    try await Task.sleep(for: .milliseconds(Int64((ttl ?? 30) * 1000 / 3)))
                    try? await micro.registry.register(record, options: options)
                }
            }
        }
    }

    struct Deregister: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a node of a service.")
        @OptionGroup var flags: ServiceFlags
        @Argument var service: String
        @Argument var nodeID: String
        func run() async throws {
            try await withService(flags) { micro in
                try await micro.registry.deregister(Service(name: service, nodes: [Node(id: nodeID, address: "")]))
                say("deregistered")
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print registry events as they happen: \"watching\", then one line per event (kind, then the service as JSON)."
        )
        @OptionGroup var flags: ServiceFlags
        @Argument(help: "Only this service.") var service: String?
        @Option(help: "Exit after this many events.") var count: Int?

        func validate() throws {
            if let count, count <= 0 { throw ValidationError("--count needs a positive integer, not \(count)") }
        }

        func run() async throws {
            try await withService(flags) { micro in
                let watcher = try await micro.registry.watch(WatchOptions(service: service))
                say("watching")
                var seen = 0
                for try await event in watcher {
                    say("\(event.kind.rawValue) \(RegistryCommand.json(event.service))")
                    seen += 1
                    if let count, seen >= count { break }
                }
                watcher.stop()
            }
        }
    }
}
