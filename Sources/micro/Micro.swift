import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC
import Logging
import Metrics

/// `micro`: calls, streams, publishes, discovers and load-tests services from the command line, and runs the
/// example service. Global flags (`--registry`, `--tls_ca`, ...) go after the subcommand; each has a `MICRO_*`
/// environment variable.
struct MicroCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "micro",
        abstract: "Call, stream, publish, discover and load-test swift-micro services.",
        discussion: """
        Every command takes the global flags (micro call --help lists them), each also an environment variable: \
        --registry local|etcd|memory (MICRO_REGISTRY), --registry_address, --broker, --selector, --tls_cert, \
        --tls_key, --tls_ca, --server_address, --server_name, --server_version, --log_level, ...

        Start the example in one terminal and call it from another:
          micro serve example
          micro call greeter Greeter.Hello '{"name": "Ada"}'

        \(CLIError.exitCodeHelp)
        """,
        subcommands: [Call.self, StreamCommand.self, Publish.self, Subscribe.self, Services.self, Describe.self, Health.self,
                      RegistryCommand.self, Bench.self, Serve.self, SidecarCommand.self, SelectorBenchCommand.self, ChaosCommand.self]
    )
}

/// A duration flag: `2`, `1.5s`, `300ms`, `2m`.
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    var duration: Duration
    var text: String
    init(_ duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }
    init?(argument: String) {
        guard let d = Duration(text: argument) else { return nil }
        self.init(d, text: argument)
    }
    var description: String { text }
    var defaultValueDescription: String { text }
    var seconds: Double { duration.inSeconds }
}

extension ServiceFlags {
    /// The service behind a command: the flags' plugins, one event loop unless `--transport_threads` says more.
    /// Commands log warnings and errors only (their output is for people and pipes) unless `--log_level` or
    /// `MICRO_LOG_LEVEL` says otherwise; a server (`micro serve`) logs from `info`.
    func makeService(name: String = "micro", defaultLogLevel: Logger.Level = .warning, client: ClientConfiguration? = nil,
                     metrics: MetricsRegistry? = nil) throws -> MicroService {
        var options: ServiceOptions
        do {
            options = try resolve(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CLIError(error.description, .usage)
        }
        if logLevel == nil, (ProcessInfo.processInfo.environment["MICRO_LOG_LEVEL"] ?? "").isEmpty { options.logLevel = defaultLogLevel }
        if options.transportThreads == nil { options.transportThreads = 1 }
        var client = client ?? ClientConfiguration()
        // A command reports a service without nodes at once rather than waiting for one to appear.
        client.waitForNode = false
        do {
            return try MicroService(name: name, options: options, client: client, metrics: metrics ?? MetricsRegistry())
        } catch {
            throw CLIError(error.description, .usage)
        }
    }
}

/// Runs `body` with the service of `flags`, then closes it (also when `body` throws).
func withService<T>(_ flags: ServiceFlags, name: String = "micro", _ body: (MicroService) async throws -> T) async throws -> T {
    let service = try flags.makeService(name: name)
    do {
        let result = try await body(service)
        await service.close()
        return result
    } catch {
        await service.close()
        throw error
    }
}

/// The process's metrics, for `/metrics`: swift-metrics bootstrapped once with a metrics registry (the
/// selector's, pool's and middleware's metrics all land in it).
func bootstrapMetrics() -> MetricsRegistry {
    let registry = MetricsRegistry()
    MetricsSystem.bootstrap(registry.factory)
    return registry
}
