import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC

/// `micro services`: every service in the registry, one line per version.
struct Services: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the services in the registry: name, version, nodes.")

    @OptionGroup var flags: ServiceFlags

    func run() async throws { try await listServices(flags) }
}

/// Every service in the registry, one line per version: name, version, node addresses.
func listServices(_ flags: ServiceFlags) async throws {
    try await withService(flags) { micro in
        let services: [Service]
        do { services = try await micro.registry.listServices() } catch {
            throw CLIError("registry (\(micro.options.registry.kind.rawValue)): \(error)", .unavailable)
        }
        for service in services.sorted(by: { ($0.name, $0.version) < ($1.name, $1.version) }) {
            say("\(service.name) \(service.version) \(service.nodes.map(\.address).sorted().joined(separator: ","))")
        }
    }
}

/// `micro describe SERVICE`: its versions, nodes, endpoints and metadata as JSON.
struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a service: every version with its nodes, endpoints and metadata, as JSON.",
        discussion: CLIError.exitCodeHelp
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The service.") var service: String

    func run() async throws {
        try await withService(flags) { micro in
            try await requireService(service, in: micro)
            let records = try await micro.registry.getService(service)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            say(String(decoding: try encoder.encode(records.sorted { $0.version < $1.version }), as: UTF8.self))
        }
    }
}

/// `micro health SERVICE`: `Health.Check` on every node (or on `--address`).
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the health of every node of a service: one line per node, SERVING or why not.",
        discussion: "Exits 0 when every node serves, 1 when some do not, 69 when none answered.\n\n\(CLIError.exitCodeHelp)"
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The service.") var service: String
    @Option(help: "Check this host:port only, without discovery.") var address: String?
    @Option(help: "The deadline of each check: 2, 1.5s, 300ms.") var timeout = DurationArgument(.seconds(2), text: "2s")

    func run() async throws {
        try await withService(flags) { micro in
            var nodes: [(id: String, address: String)] = []
            if let address {
                nodes = [(id: "-", address: address)]
            } else {
                try await requireService(service, in: micro)
                for record in try await micro.registry.getService(service) {
                    nodes += record.nodes.map { (id: $0.id, address: $0.address) }
                }
            }
            var serving = 0
            var answered = 0
            for node in nodes.sorted(by: { $0.address < $1.address }) {
                let request = Request(service: service, endpoint: Server.healthEndpoint, contentType: ContentType.json, body: Array("{}".utf8))
                do {
                    let response = try await micro.client.call(request, options: CallOptions(timeout: timeout.duration, retries: 0, address: node.address))
                    answered += 1
                    let body = String(decoding: response.body, as: UTF8.self)
                    let status = body.contains("\"SERVING\"") ? "SERVING" : (body.contains("NOT_SERVING") ? "NOT_SERVING" : body)
                    if status == "SERVING" { serving += 1 }
                    say("\(node.id) \(node.address) \(status)")
                } catch let error as RPCError {
                    if error.code != .unavailable && error.code != .deadlineExceeded { answered += 1 }
                    say("\(node.id) \(node.address) \(error.code.name): \(error.message)")
                }
            }
            if answered == 0 { throw CLIError("no node of \(service) answered", .unavailable) }
            if serving < nodes.count { throw CLIError("\(nodes.count - serving) of \(nodes.count) nodes of \(service) are not serving", .failed) }
        }
    }
}
