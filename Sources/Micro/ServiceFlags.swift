public import ArgumentParser
internal import Logging
internal import MicroCore
internal import MicroRegistry
internal import MicroSelector

/// The global flags of every `micro` command and of programs built on ``MicroService``, each with an environment
/// variable: `--registry` (`MICRO_REGISTRY`), `--registry_address`, `--broker`, `--broker_address`, `--transport`,
/// `--transport_threads`, `--transport_connections`, `--selector`, `--tls_cert`, `--tls_key`, `--tls_ca`,
/// `--tls_client_auth`, `--tls_insecure`, `--tls_server_name`, `--server_address`, `--server_name`,
/// `--server_version`, `--server_metadata`, `--register_ttl`, `--register_interval`, `--admin_address`, `--log_level` (all `MICRO_` + the flag's name in capitals).
/// A flag wins over its variable; ``resolve(environment:)`` checks every value.
public struct ServiceFlags: ParsableArguments, Sendable {
    @Option(name: .customLong("registry"), help: "Registry: memory, local or etcd (MICRO_REGISTRY; default local).")
    public var registry: String?
    @Option(name: .customLong("registry_address"), help: "Registry addresses, comma-separated (MICRO_REGISTRY_ADDRESS).")
    public var registryAddress: String?
    @Option(name: .customLong("broker"), help: "Broker: embedded, memory or none (MICRO_BROKER; default embedded).")
    public var broker: String?
    @Option(name: .customLong("broker_address"), help: "Where the embedded broker listens (MICRO_BROKER_ADDRESS).")
    public var brokerAddress: String?
    @Option(name: .customLong("transport"), help: "Transport: uv or memory (MICRO_TRANSPORT; default uv).")
    public var transport: String?
    @Option(name: .customLong("transport_threads"), help: "Event loops of the transport (MICRO_TRANSPORT_THREADS; default: one per core).")
    public var transportThreads: String?
    @Option(name: .customLong("transport_connections"), help: "Connections per node (MICRO_TRANSPORT_CONNECTIONS; default 8).")
    public var transportConnections: String?
    @Option(name: .customLong("selector"), help: "Node selection: leastOutstanding, random, roundRobin, weighted or peakEWMA (MICRO_SELECTOR).")
    public var selector: String?
    @Option(name: .customLong("tls_cert"), help: "PEM certificate chain: the server's, or the client's for mTLS (MICRO_TLS_CERT).")
    public var tlsCert: String?
    @Option(name: .customLong("tls_key"), help: "PEM private key of --tls_cert (MICRO_TLS_KEY).")
    public var tlsKey: String?
    @Option(name: .customLong("tls_ca"), help: "PEM CA certificates that verify the peer; turns TLS on for clients (MICRO_TLS_CA).")
    public var tlsCA: String?
    @Flag(name: .customLong("tls_client_auth"), help: "The server requires client certificates (mTLS) (MICRO_TLS_CLIENT_AUTH=1).")
    public var tlsClientAuth = false
    @Flag(name: .customLong("tls_insecure"), help: "TLS without verifying the server: for tests only (MICRO_TLS_INSECURE=1).")
    public var tlsInsecure = false
    @Option(name: .customLong("tls_server_name"), help: "The name expected in the server's certificate (MICRO_TLS_SERVER_NAME).")
    public var tlsServerName: String?
    @Option(name: .customLong("server_address"), help: "Where the server listens (MICRO_SERVER_ADDRESS; default 127.0.0.1:0).")
    public var serverAddress: String?
    @Option(name: .customLong("server_name"), help: "The name the server registers (MICRO_SERVER_NAME).")
    public var serverName: String?
    @Option(name: .customLong("server_version"), help: "The version the server registers (MICRO_SERVER_VERSION; default latest).")
    public var serverVersion: String?
    @Option(name: .customLong("server_metadata"), help: "Node metadata k=v, repeatable (MICRO_SERVER_METADATA: k=v,k=v).")
    public var serverMetadata: [String] = []
    @Option(name: .customLong("register_ttl"), help: "Seconds the registry keeps the node without renewal (MICRO_REGISTER_TTL; default 90).")
    public var registerTTL: String?
    @Option(name: .customLong("register_interval"), help: "Seconds between renewals (MICRO_REGISTER_INTERVAL; default 30).")
    public var registerInterval: String?
    @Option(name: .customLong("admin_address"), help: "Serve /health and /metrics (Prometheus) at host:port (MICRO_ADMIN_ADDRESS).")
    public var adminAddress: String?
    @Option(name: .customLong("log_level"), help: "trace, debug, info, notice, warning, error or critical (MICRO_LOG_LEVEL; default info).")
    public var logLevel: String?

    public init() {}

    /// The options these flags and `environment` give; throws ``ServiceOptionsError`` naming the first bad value.
    public func resolve(environment: [String: String]) throws(ServiceOptionsError) -> ServiceOptions {
        func value(_ flag: String?, _ variable: String) -> String? {
            if let flag { return flag }
            if let v = environment[variable], !v.isEmpty { return v }
            return nil
        }
        func bool(_ flag: Bool, _ variable: String) throws(ServiceOptionsError) -> Bool {
            if flag { return true }
            guard let v = environment[variable], !v.isEmpty else { return false }
            switch v.lowercased() {
            case "1", "true", "yes", "on": return true
            case "0", "false", "no", "off": return false
            default: throw ServiceOptionsError("\(variable) must be 1 or 0, not \(v)")
            }
        }
        func positive(_ text: String?, _ name: String) throws(ServiceOptionsError) -> Int? {
            guard let text else { return nil }
            guard let n = Int(text), n > 0, n <= 4096 else { throw ServiceOptionsError("\(name) needs a positive integer, not \(text)") }
            return n
        }
        func choice<T: RawRepresentable & CaseIterable>(_ text: String?, _ name: String, _ type: T.Type) throws(ServiceOptionsError) -> T? where T.RawValue == String {
            guard let text else { return nil }
            if let match = T.allCases.first(where: { $0.rawValue.lowercased() == text.lowercased() }) { return match }
            throw ServiceOptionsError("unknown \(name) \(text) (\(T.allCases.map(\.rawValue).joined(separator: ", ")))")
        }

        var options = ServiceOptions()
        do {
            var arguments: [String] = []
            if let registry { arguments += ["--registry", registry] }
            if let registryAddress { arguments += ["--registry_address", registryAddress] }
            options.registry = try RegistryConfiguration.parse(arguments: arguments, environment: environment)
        } catch {
            throw ServiceOptionsError("\(error)")
        }
        if let broker = try choice(value(broker, "MICRO_BROKER"), "broker", ServiceOptions.BrokerKind.self) { options.broker = broker }
        options.brokerAddress = value(brokerAddress, "MICRO_BROKER_ADDRESS")
        if let transport = try choice(value(transport, "MICRO_TRANSPORT"), "transport", ServiceOptions.TransportKind.self) {
            options.transport = transport
        }
        options.transportThreads = try positive(value(transportThreads, "MICRO_TRANSPORT_THREADS"), "--transport_threads")
        if let n = try positive(value(transportConnections, "MICRO_TRANSPORT_CONNECTIONS"), "--transport_connections") {
            options.connectionsPerNode = n
        }
        if let strategy = try choice(value(selector, "MICRO_SELECTOR"), "selector", Strategy.self) { options.selector.strategy = strategy }

        let cert = value(tlsCert, "MICRO_TLS_CERT")
        let key = value(tlsKey, "MICRO_TLS_KEY")
        let ca = value(tlsCA, "MICRO_TLS_CA")
        let clientAuth = try bool(tlsClientAuth, "MICRO_TLS_CLIENT_AUTH")
        let insecure = try bool(tlsInsecure, "MICRO_TLS_INSECURE")
        let serverName = value(tlsServerName, "MICRO_TLS_SERVER_NAME")
        if (cert == nil) != (key == nil) { throw ServiceOptionsError("--tls_cert and --tls_key go together") }
        if clientAuth, ca == nil { throw ServiceOptionsError("--tls_client_auth needs --tls_ca (the CA of the client certificates)") }
        if cert != nil || ca != nil || insecure || serverName != nil {
            options.tls = ServiceOptions.TLSFiles(certificate: cert, key: key, certificateAuthority: ca,
                                                  requireClientCertificate: clientAuth, insecure: insecure, serverName: serverName)
        }

        if let address = value(serverAddress, "MICRO_SERVER_ADDRESS") {
            guard Self.isHostPort(address) else { throw ServiceOptionsError("--server_address needs host:port, not \(address)") }
            options.serverAddress = address
        }
        if let address = value(adminAddress, "MICRO_ADMIN_ADDRESS") {
            guard Self.isHostPort(address) else { throw ServiceOptionsError("--admin_address needs host:port, not \(address)") }
            options.adminAddress = address
        }
        options.serverName = value(self.serverName, "MICRO_SERVER_NAME")
        if let version = value(serverVersion, "MICRO_SERVER_VERSION") { options.serverVersion = version }
        var pairs = serverMetadata
        if pairs.isEmpty, let v = environment["MICRO_SERVER_METADATA"], !v.isEmpty { pairs = v.split(separator: ",").map(String.init) }
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ServiceOptionsError("--server_metadata needs key=value, not \(pair)") }
            options.serverMetadata[String(parts[0])] = String(parts[1])
        }
        func seconds(_ text: String?, _ name: String) throws(ServiceOptionsError) -> Duration? {
            guard let text else { return nil }
            guard let v = Double(text), v > 0, v <= 86_400 else { throw ServiceOptionsError("\(name) needs seconds (a positive number), not \(text)") }
            return .milliseconds(Int64(v * 1000))
        }
        if let ttl = try seconds(value(registerTTL, "MICRO_REGISTER_TTL"), "--register_ttl") { options.registerTTL = ttl }
        if let interval = try seconds(value(registerInterval, "MICRO_REGISTER_INTERVAL"), "--register_interval") {
            options.registerInterval = interval
        }
        if let level = value(logLevel, "MICRO_LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ServiceOptionsError("unknown log level \(level) (trace, debug, info, notice, warning, error, critical)")
            }
            options.logLevel = parsed
        }
        return options
    }

    /// `host:port` with a port in 0...65535 (IPv6 hosts in brackets).
    static func isHostPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex else { return false }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return false }
        return true
    }
}

/// A flag or environment variable with a bad value: the message names it.
public struct ServiceOptionsError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
