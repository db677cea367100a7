import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC

/// `micro call SERVICE ENDPOINT '{json}'`: one unary call through discovery, selection, retries and the deadline.
struct Call: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call an endpoint of a service with a JSON body and print the answer.",
        discussion: "Example: micro call greeter Greeter.Hello '{\"name\": \"Ada\"}'\n\n\(CLIError.exitCodeHelp)"
    )

    @OptionGroup var flags: ServiceFlags
    @Argument(help: "The service, e.g. greeter.") var service: String
    @Argument(help: "The endpoint, e.g. Greeter.Hello.") var endpoint: String
    @Argument(help: "The request: JSON (checked before sending), - to read it from standard input.") var body: String = "{}"
    @OptionGroup var call: CallFlags

    func run() async throws {
        let bytes = try call.requestBody(body)
        try await withService(flags) { micro in
            let options = try await call.callOptions(for: service, in: micro)
            let request = Request(service: service, endpoint: endpoint, contentType: call.contentType, body: bytes,
                                  metadata: try parseMetadata(call.metadata))
            let response: Response
            do {
                response = try await micro.client.call(request, options: options)
            } catch let error as RPCError {
                throw CLIError(error, service: service, endpoint: endpoint)
            }
            if call.verbose {
                for (k, v) in response.metadata { say("< \(k): \(v)") }
            }
            FileHandle.standardOutput.write(Data(response.body))
            if response.body.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
        }
    }
}

/// The flags of a call or stream: its deadline, retries, metadata, where it goes.
struct CallFlags: ParsableArguments {
    @Option(name: .customLong("metadata"), help: "Request metadata key=value (repeatable).") var metadata: [String] = []
    @Option(help: "The call's deadline: 2, 1.5s, 300ms.") var timeout = DurationArgument(.seconds(10), text: "10s")
    @Option(help: "Retries on another node (only when the call certainly did not run, or with --idempotent).") var retries: Int?
    @Option(help: "Call this host:port directly, without discovery.") var address: String?
    @Flag(help: "The endpoint is idempotent: retry also when the outcome is unknown.") var idempotent = false
    @Flag(help: "Send the body as raw bytes (application/octet-stream), not JSON.") var raw = false
    @Flag(name: .shortAndLong, help: "Print the response metadata (lines starting with <).") var verbose = false

    func validate() throws {
        if let retries, retries < 0 || retries > 100 { throw ValidationError("--retries needs 0 to 100, not \(retries)") }
        if let address, !address.contains(":") { throw ValidationError("--address needs host:port, not \(address)") }
    }

    var contentType: String { raw ? ContentType.raw : ContentType.json }

    /// `text`, or standard input for `-`, checked as JSON unless raw.
    func requestBody(_ text: String) throws -> [UInt8] {
        if text == "-" {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            return try checkedBody(String(decoding: data, as: UTF8.self), raw: raw)
        }
        return try checkedBody(text, raw: raw)
    }

    /// The call's options; without `--address`, first checks that the registry knows `service`.
    func callOptions(for service: String, in micro: MicroService) async throws -> CallOptions {
        if address == nil { try await requireService(service, in: micro) }
        return CallOptions(timeout: timeout.duration, retries: retries, idempotent: idempotent, address: address, waitForNode: false)
    }
}

/// Throws "unknown service" (68) when the registry has no node of `name`, "unavailable" (69) when it cannot be read.
func requireService(_ name: String, in micro: MicroService) async throws {
    let records: [Service]
    do {
        records = try await micro.registry.getService(name)
    } catch RegistryError.notFound {
        records = []
    } catch {
        throw CLIError("registry (\(micro.options.registry.kind.rawValue)): \(error)", .unavailable)
    }
    if records.allSatisfy({ $0.nodes.isEmpty }) {
        throw CLIError("unknown service \(name): not in the \(micro.options.registry.kind.rawValue) registry", .unknownService)
    }
}
