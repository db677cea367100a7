import Micro
import MicroCore
import MicroRegistry
import Testing

/// The global flags and their environment variables: flags win, every bad value is refused with its name.
@Suite struct ServiceFlagsTests {
    func resolve(_ arguments: [String], _ environment: [String: String] = [:]) throws -> ServiceOptions {
        try ServiceFlags.parse(arguments).resolve(environment: environment)
    }

    @Test func defaults() throws {
        let o = try resolve([])
        #expect(o.registry.kind == .local)
        #expect(o.broker == .embedded)
        #expect(o.transport == .uv)
        #expect(o.selector.strategy == .leastOutstanding)
        #expect(o.tls == nil)
        #expect(o.serverAddress == "127.0.0.1:0")
        #expect(o.serverVersion == "latest")
        #expect(o.logLevel == .info)
    }

    @Test func everyFlag() throws {
        let o = try resolve([
            "--registry", "etcd", "--registry_address", "127.0.0.1:2379,127.0.0.1:2380", "--broker", "memory",
            "--broker_address", "127.0.0.1:7000", "--transport", "memory", "--transport_threads", "3",
            "--transport_connections", "2", "--selector", "roundRobin", "--server_address", "127.0.0.1:9000",
            "--server_name", "svc", "--server_version", "v2", "--server_metadata", "zone=a", "--server_metadata", "weight=3",
            "--register_ttl", "5", "--register_interval", "1.5", "--log_level", "debug",
        ])
        #expect(o.registry.kind == .etcd)
        #expect(o.registry.addresses == ["127.0.0.1:2379", "127.0.0.1:2380"])
        #expect(o.broker == .memory)
        #expect(o.brokerAddress == "127.0.0.1:7000")
        #expect(o.transport == .memory)
        #expect(o.transportThreads == 3)
        #expect(o.connectionsPerNode == 2)
        #expect(o.selector.strategy == .roundRobin)
        #expect(o.serverAddress == "127.0.0.1:9000")
        #expect(o.serverName == "svc")
        #expect(o.serverVersion == "v2")
        #expect(o.serverMetadata == ["zone": "a", "weight": "3"])
        #expect(o.registerTTL == .seconds(5))
        #expect(o.registerInterval == .milliseconds(1500))
        #expect(o.logLevel == .debug)
    }

    @Test func environmentAndFlagsWin() throws {
        let env = ["MICRO_REGISTRY": "memory", "MICRO_BROKER": "none", "MICRO_SELECTOR": "random", "MICRO_SERVER_NAME": "fromenv",
                   "MICRO_SERVER_METADATA": "a=1,b=2", "MICRO_TLS_CA": "/ca.pem", "MICRO_TLS_INSECURE": "1", "MICRO_LOG_LEVEL": "error"]
        let fromEnv = try resolve([], env)
        #expect(fromEnv.registry.kind == .memory)
        #expect(fromEnv.broker == ServiceOptions.BrokerKind.none)
        #expect(fromEnv.selector.strategy == .random)
        #expect(fromEnv.serverName == "fromenv")
        #expect(fromEnv.serverMetadata == ["a": "1", "b": "2"])
        #expect(fromEnv.tls?.certificateAuthority == "/ca.pem")
        #expect(fromEnv.tls?.insecure == true)
        #expect(fromEnv.logLevel == .error)
        let flagged = try resolve(["--registry", "local", "--broker", "embedded", "--selector", "peakEWMA", "--server_name", "flag"], env)
        #expect(flagged.registry.kind == .local)
        #expect(flagged.broker == .embedded)
        #expect(flagged.selector.strategy == .peakEWMA)
        #expect(flagged.serverName == "flag")
    }

    @Test func tlsFiles() throws {
        let o = try resolve(["--tls_cert", "c.pem", "--tls_key", "k.pem", "--tls_ca", "ca.pem", "--tls_client_auth", "--tls_server_name", "svc"])
        #expect(o.tls == ServiceOptions.TLSFiles(certificate: "c.pem", key: "k.pem", certificateAuthority: "ca.pem",
                                                 requireClientCertificate: true, insecure: false, serverName: "svc"))
    }

    @Test("bad values are refused with the flag's name", arguments: [
        (["--registry", "consul"], "consul"), (["--broker", "kafka"], "kafka"), (["--transport", "quic"], "quic"),
        (["--selector", "fastest"], "fastest"), (["--transport_threads", "0"], "--transport_threads"),
        (["--transport_connections", "x"], "--transport_connections"), (["--server_address", "nowhere"], "--server_address"),
        (["--server_address", "127.0.0.1:70000"], "--server_address"), (["--server_metadata", "novalue"], "--server_metadata"),
        (["--register_ttl", "0"], "--register_ttl"), (["--register_interval", "soon"], "--register_interval"),
        (["--log_level", "loud"], "loud"), (["--tls_cert", "c.pem"], "--tls_key"), (["--tls_client_auth"], "--tls_ca"),
    ])
    func badValues(_ arguments: [String], _ named: String) throws {
        do {
            _ = try resolve(arguments)
            Issue.record("\(arguments) was accepted")
        } catch {
            #expect("\(error)".contains(named), "\(error)")
        }
    }

    @Test func badEnvironmentValues() {
        #expect(throws: ServiceOptionsError.self) { try resolve([], ["MICRO_BROKER": "kafka"]) }
        #expect(throws: ServiceOptionsError.self) { try resolve([], ["MICRO_TLS_INSECURE": "maybe"]) }
        #expect(throws: ServiceOptionsError.self) { try resolve([], ["MICRO_REGISTRY": "zk"]) }
    }

    @Test func unknownFlagIsAParseError() {
        #expect(throws: (any Error).self) { try ServiceFlags.parse(["--registery", "etcd"]) }
    }
}
