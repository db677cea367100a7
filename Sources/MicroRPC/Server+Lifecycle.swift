internal import MicroCore
public import ServiceLifecycle

extension Server: ServiceLifecycle.Service {
    /// Runs as a swift-service-lifecycle `Service`: starts, serves until the group shuts down gracefully
    /// (SIGTERM/SIGINT when the group is configured with them), then stops with ``shutdown(gracePeriod:)``.
    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Runs this server until SIGTERM or SIGINT, then stops gracefully.
    public func runUntilSignalled() async throws {
        let group = ServiceGroup(configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
