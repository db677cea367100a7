public import Logging
public import MicroCore
public import MicroEventLoop
public import MicroInMemory
public import MicroRPC
public import MicroSelector
internal import MicroBroker
internal import MicroRegistry
internal import MicroTLS
internal import MicroUVTransport
internal import ArgumentParser
internal import MicroHTTPServer
internal import MicroMiddleware
import Foundation
import Synchronization

/// A service with everything wired, as go-micro's `micro.NewService`: the registry, broker, transport and
/// selector its ``ServiceOptions`` name, a ``Server`` that registers under the service's name and a ``Client``
/// that finds other services through the same registry. A program is three lines:
///
/// ```swift
/// let service = try MicroService(name: "greeter")                  // flags and MICRO_* variables
/// service.server.handle("Greeter.Hello", Hello.self) { hello, _ in Greeting(text: "Hello, \(hello.name)!") }
/// try await service.run()                                          // serves until SIGTERM/SIGINT
/// ```
///
/// (The type is not called `Service`: MicroCore's `Service` is the registry's record of one.)
///
/// Thread-safe. ``close()`` (which ``run()`` calls at its end) releases the loops; a service that was never run
/// must be closed.
public final class MicroService: Sendable {
    public let name: String
    public let options: ServiceOptions
    /// The event loops of the transport and the embedded broker.
    public let group: EventLoopGroup
    public let registry: any Registry
    /// Nil with `--broker none`.
    public let broker: (any Broker)?
    public let selector: RegistrySelector
    public let client: Client
    public let server: Server
    public let logger: Logger
    /// Where the service's metrics are kept for `/metrics`: with an admin address, the server's and client's
    /// calls (MicroMiddleware's `MetricsMiddleware`); whatever else is counted into it (the `micro` command
    /// bootstraps swift-metrics with it).
    public let metrics: MetricsRegistry
    private let clientTransport: any ClientTransport
    /// The admin endpoint once started. Guarded by its mutex.
    private let adminServer = Mutex<HTTPServer?>(nil)

    /// Builds the service's parts. `server` and `client` carry what flags do not (middleware, codecs, limits);
    /// the name, version, metadata and broker in `server` are replaced by `name` and `options`. With the memory
    /// transport, `network` is where the server listens and the client dials (a new one when nil).
    /// Throws ``ServiceOptionsError`` for an option that cannot be used (an unreadable TLS file, a bad address).
    public init(name: String, options: ServiceOptions, server: ServerConfiguration? = nil,
                client: ClientConfiguration = ClientConfiguration(), network: InMemoryNetwork? = nil,
                metrics: MetricsRegistry = MetricsRegistry()) throws(ServiceOptionsError) {
        self.metrics = metrics
        let serviceName = options.serverName ?? name
        self.name = serviceName
        self.options = options
        var logger = Logger(label: "swift-micro.\(serviceName)")
        logger.logLevel = options.logLevel
        self.logger = logger
        func labelled(_ label: String) -> Logger {
            var l = Logger(label: label)
            l.logLevel = options.logLevel
            return l
        }

        let registry: any Registry
        do { registry = try options.registry.makeRegistry() } catch { throw ServiceOptionsError("registry: \(error)") }
        self.registry = registry
        let group = EventLoopGroup(threads: options.transportThreads ?? EventLoopGroup.coreCount)
        self.group = group

        var transport = UVTransportConfiguration()
        transport.logger = labelled("swift-micro.transport")
        transport.maxConnectionsPerAddress = options.connectionsPerNode
        var serverTransportConfiguration = transport
        if let files = options.tls {
            do {
                transport.tls = try TLSContext(role: .client, configuration: files.clientConfiguration)
                if files.certificate != nil {
                    serverTransportConfiguration.tls = try TLSContext(role: .server, configuration: files.serverConfiguration)
                }
            } catch {
                _ = group.shutdownGracefully()
                throw ServiceOptionsError("TLS: \(error)")
            }
        }

        let broker: (any Broker)?
        switch options.broker {
        case .embedded:
            var configuration = EmbeddedBrokerConfiguration()
            if let address = options.brokerAddress { configuration.listenAddress = address }
            configuration.transport = transport
            configuration.logger = labelled("swift-micro.broker")
            broker = EmbeddedBroker(group: group, registry: registry, configuration: configuration)
        case .memory:
            broker = MemoryBroker()
        case .none:
            broker = nil
        }
        self.broker = broker

        let serverTransport: any ServerTransport
        switch options.transport {
        case .uv:
            let address: SocketAddress
            do { address = try SocketAddress(options.serverAddress) } catch {
                _ = group.shutdownGracefully()
                throw ServiceOptionsError("--server_address \(options.serverAddress): \(error)")
            }
            clientTransport = UVClientTransport(group: group, configuration: transport)
            serverTransport = UVServerTransport(group: group, address: address, configuration: serverTransportConfiguration)
        case .memory:
            let network = network ?? InMemoryNetwork()
            clientTransport = InMemoryTransport(network: network)
            let address = options.serverAddress.hasSuffix(":0") ? "\(serviceName)-\(UUID().uuidString.lowercased())" : options.serverAddress
            serverTransport = InMemoryServer(network: network, address: address)
        }

        var serverConfiguration = server ?? ServerConfiguration(name: serviceName)
        serverConfiguration.name = serviceName
        serverConfiguration.version = options.serverVersion
        serverConfiguration.nodeMetadata.merge(options.serverMetadata) { _, flag in flag }
        serverConfiguration.broker = broker
        if options.adminAddress != nil {
            let factory = metrics.factory
            serverConfiguration.use { MetricsMiddleware(factory: factory) }
        }
        serverConfiguration.registerTTL = options.registerTTL
        serverConfiguration.registerInterval = options.registerInterval
        self.server = Server(configuration: serverConfiguration, transport: serverTransport, registry: registry,
                             logger: labelled("swift-micro.server"))

        selector = RegistrySelector(registry: registry, configuration: options.selector, logger: labelled("swift-micro.selector"))
        var clientConfiguration = client
        clientConfiguration.broker = broker
        if options.adminAddress != nil {
            let factory = metrics.factory
            clientConfiguration.use { MetricsMiddleware(factory: factory) }
        }
        self.client = Client(transport: clientTransport, selector: selector, configuration: clientConfiguration,
                             logger: labelled("swift-micro.client"))
    }

    /// A service configured by the process's flags and `MICRO_*` variables (``commandLineOptions(_:environment:)``:
    /// `--help` prints the flags and exits; a bad flag prints one line and exits 64).
    public convenience init(name: String, server: ServerConfiguration? = nil, client: ClientConfiguration = ClientConfiguration()) throws(ServiceOptionsError) {
        try self.init(name: name, options: Self.commandLineOptions(), server: server, client: client)
    }

    /// The options of `arguments` (the process's, without its name, by default) and `environment`, as go-micro's
    /// `service.Init()`: `--help` prints the flags and exits 0; an unknown flag or a bad value prints one line
    /// to standard error and exits 64 (EX_USAGE). Programs with flags of their own parse ``ServiceFlags`` as an
    /// `@OptionGroup` instead and call ``ServiceFlags/resolve(environment:)``.
    public static func commandLineOptions(_ arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                                          environment: [String: String]? = nil) -> ServiceOptions {
        let environment = environment ?? ProcessInfo.processInfo.environment
        let program = (CommandLine.arguments.first ?? "service").split(separator: "/").last.map(String.init) ?? "service"
        do {
            return try ServiceFlags.parse(arguments).resolve(environment: environment)
        } catch let error as ServiceOptionsError {
            FileHandle.standardError.write(Data("\(program): \(error)\n".utf8))
            exit(64)
        } catch {
            if ServiceFlags.exitCode(for: error) == .success {
                print(ServiceFlags.helpMessage(columns: 100))
                exit(0)
            }
            FileHandle.standardError.write(Data("\(program): \(ServiceFlags.message(for: error))\n".utf8))
            exit(64)
        }
    }

    /// Starts the server (listens, registers, renews the registration) and, with an admin address, the admin
    /// endpoint.
    public func start() async throws {
        try await server.start()
        if let address = options.adminAddress {
            do {
                _ = try await startAdmin(address: address)
            } catch {
                await server.shutdown()
                throw error
            }
        }
    }

    /// Serves `/health` (the server's state: 503 once it began to stop) and `/metrics` at `address` on the
    /// service's loops. ``close()`` stops it.
    public func startAdmin(address: String) async throws -> SocketAddress {
        let routes = AdminRoutes(metrics: metrics) { [server] in server.isServing }
        let http = try await HTTPServer.start(group: group, address: try SocketAddress(address)) { request in
            routes.response(to: request) ?? AdminRoutes.notFound(request.head.path ?? "/")
        }
        if let previous = adminServer.withLock({ s -> HTTPServer? in defer { s = http }; return s }) { await previous.close() }
        return http.localAddress
    }

    /// Where the admin endpoint listens, once started.
    public var adminAddress: SocketAddress? { adminServer.withLock { $0?.localAddress } }

    /// Starts the server, serves until SIGTERM or SIGINT, stops it gracefully (deregister, drain) and closes the
    /// service.
    public func run() async throws {
        do {
            try await server.runUntilSignalled()
        } catch {
            await close()
            throw error
        }
        await close()
    }

    /// Stops the server (if it was started), the broker's subscriptions, the selector's watches and the client's
    /// connections, then the event loops. Idempotent.
    public func close() async {
        await server.shutdown()
        if let admin = adminServer.withLock({ s -> HTTPServer? in defer { s = nil }; return s }) { await admin.close(gracePeriod: .seconds(1)) }
        selector.close()
        if let broker { await broker.close() }
        await clientTransport.shutdown()
        // Joining the loops' threads blocks; not on a thread of the cooperative pool.
        await group.shutdown()
    }
}

extension ServiceOptions.TLSFiles {
    var clientConfiguration: TLSConfiguration {
        var c = TLSConfiguration()
        if let certificate, let key {
            c.certificateChain = .file(certificate)
            c.privateKey = .file(key)
        }
        if let certificateAuthority { c.trustRoots = .file(certificateAuthority) }
        if insecure { c.verification = .none }
        c.serverName = serverName
        return c
    }

    var serverConfiguration: TLSConfiguration {
        var c = TLSConfiguration()
        if let certificate, let key {
            c.certificateChain = .file(certificate)
            c.privateKey = .file(key)
        }
        if let certificateAuthority { c.trustRoots = .file(certificateAuthority) }
        c.requireClientCertificate = requireClientCertificate
        return c
    }
}
