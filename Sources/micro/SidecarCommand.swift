import ArgumentParser
import Foundation
import Micro
import MicroMiddleware
import MicroRPC

/// `micro sidecar`: the HTTP way in (see ``Sidecar``).
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Serve HTTP: POST /SERVICE/ENDPOINT calls the service; GET /services, /health, /metrics.",
        discussion: """
        Prints "sidecar listening http://<address>" and serves until SIGTERM/SIGINT.
          curl -d '{"name": "Ada"}' http://127.0.0.1:8080/greeter/Greeter.Hello
        The deadline comes from X-Micro-Timeout (250ms, 2s) or X-Micro-Deadline (Unix ms); headers \
        X-Micro-Meta-KEY become request metadata. RPC errors map to HTTP statuses (unavailable 503, \
        deadlineExceeded 504, invalidArgument 400, unauthenticated 401, permissionDenied 403, \
        resourceExhausted 429, unimplemented 501; unknown service 404) with a JSON body \
        {"code": ..., "status": ..., "message": ...}.
        """
    )

    @OptionGroup var flags: ServiceFlags
    @Option(help: "Where the sidecar listens.") var address = "127.0.0.1:8080"
    @Option(help: "The deadline of a call whose request names none: 10s, 500ms.") var timeout = DurationArgument(.seconds(10), text: "10s")
    @Option(help: "The largest request body, in bytes.") var maxBody = 4 << 20

    func validate() throws {
        if !address.contains(":") { throw ValidationError("--address needs host:port, not \(address)") }
        if maxBody <= 0 || maxBody > 1 << 30 { throw ValidationError("--max-body needs 1 to 1 GiB, not \(maxBody)") }
    }

    func run() async throws {
        let signals = AsyncSignals.install()
        let metrics = bootstrapMetrics()
        var client = ClientConfiguration()
        let factory = metrics.factory
        client.use { MetricsMiddleware(factory: factory) }
        let micro = try flags.makeService(name: "micro-sidecar", defaultLogLevel: .info, client: client, metrics: metrics)
        var configuration = SidecarConfiguration()
        configuration.address = address
        configuration.defaultTimeout = timeout.duration
        configuration.http.limits.maxBodyBytes = maxBody
        let sidecar: Sidecar
        do {
            sidecar = try await Sidecar.start(service: micro, configuration: configuration)
        } catch {
            await micro.close()
            throw CLIError("cannot listen on \(address): \(error)", .unavailable)
        }
        say("sidecar listening http://\(sidecar.localAddress)")
        await signals.wait()
        await sidecar.close()
        await micro.close()
        say("stopped")
    }
}
