public import Logging
public import MicroRegistry
public import MicroSelector

/// Everything a ``MicroService`` (and every `micro` command) is built from: which plugins (registry, broker,
/// transport, selector strategy), where they are, TLS files, and the server's name, address and version.
///
/// Each property has a default, a flag and an environment variable, as go-micro users know them (see
/// ``ServiceFlags``): `--registry etcd` or `MICRO_REGISTRY=etcd`. Flags win over the environment.
public struct ServiceOptions: Sendable {
    /// Where services are registered and found (`--registry`, `--registry_address`).
    public var registry = RegistryConfiguration()
    /// How messages are published and received (`--broker`, `--broker_address`).
    public var broker: BrokerKind = .embedded
    /// The embedded broker's listen address (subscribers only); nil: `127.0.0.1:0`.
    public var brokerAddress: String?
    /// How calls reach nodes (`--transport`).
    public var transport: TransportKind = .uv
    /// Event loops (threads) of the libuv transport (`--transport_threads`); nil: one per core.
    public var transportThreads: Int?
    /// Connections the client keeps per node address (`--transport_connections`).
    public var connectionsPerNode = 8
    /// How the client picks a node (`--selector`).
    public var selector = SelectorConfiguration()
    /// TLS for the transport; nil: plain TCP.
    public var tls: TLSFiles?
    /// Where the server listens (`--server_address`). Loopback by default: set `0.0.0.0:PORT` to serve others.
    public var serverAddress = "127.0.0.1:0"
    /// The name the server registers (`--server_name`); nil: the name given in code.
    public var serverName: String?
    /// The version the server registers (`--server_version`).
    public var serverVersion = "latest"
    /// Node metadata the server registers (`--server_metadata k=v`, repeated).
    public var serverMetadata: [String: String] = [:]
    /// How long the registry keeps the server's node without a renewal (`--register_ttl`, seconds).
    public var registerTTL: Duration = .seconds(90)
    /// How often the server renews its registration (`--register_interval`, seconds); well below the TTL.
    public var registerInterval: Duration = .seconds(30)
    /// Where ``MicroService/start()`` serves the admin routes `/health` and `/metrics` (`--admin_address`); nil:
    /// none. With an admin address the server and client count their calls into ``MicroService/metrics``.
    public var adminAddress: String?
    /// The level of every logger the service creates (`--log_level`).
    public var logLevel: Logger.Level = .info

    public init() {}

    /// Brokers this build knows.
    public enum BrokerKind: String, Sendable, CaseIterable {
        /// Zero-config, across the processes of one machine, found through the registry.
        case embedded
        /// In this process only.
        case memory
        /// No broker: publishing and subscribing fail with a usage error.
        case none
    }

    /// Transports this build knows.
    public enum TransportKind: String, Sendable, CaseIterable {
        /// The libuv transport: multiplexed frames over TCP, or TLS when ``ServiceOptions/tls`` is set.
        case uv
        /// In this process only (``MicroService``'s in-memory network).
        case memory
    }

    /// The TLS files (PEM) of both sides.
    public struct TLSFiles: Sendable, Hashable {
        /// Our certificate chain (`--tls_cert`): the server's, or the client's for mTLS.
        public var certificate: String?
        /// Its private key (`--tls_key`).
        public var key: String?
        /// CA certificates that verify the peer (`--tls_ca`); nil: the system's.
        public var certificateAuthority: String?
        /// The server requires client certificates (`--tls_client_auth`).
        public var requireClientCertificate = false
        /// The client verifies nothing (`--tls_insecure`): anyone can impersonate the server. For tests.
        public var insecure = false
        /// The name the client expects in the server's certificate (`--tls_server_name`); nil: the dialled host.
        public var serverName: String?

        public init(certificate: String? = nil, key: String? = nil, certificateAuthority: String? = nil,
                    requireClientCertificate: Bool = false, insecure: Bool = false, serverName: String? = nil) {
            self.certificate = certificate
            self.key = key
            self.certificateAuthority = certificateAuthority
            self.requireClientCertificate = requireClientCertificate
            self.insecure = insecure
            self.serverName = serverName
        }
    }
}
