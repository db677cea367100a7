import MicroInMemory
import MicroCore
import MicroRegistry
import Testing

@Suite struct RegistryConfigurationTests {
    @Test func defaultIsLocal() throws {
        let c = try RegistryConfiguration.parse(arguments: [], environment: [:])
        #expect(c.kind == .local)
        #expect(c.addresses.isEmpty)
        #expect(try c.makeRegistry() is LocalRegistry)
    }

    @Test func flagsAsGoMicroUsersWriteThem() throws {
        let c = try RegistryConfiguration.parse(
            arguments: ["serve", "--registry", "etcd", "--registry_address", "127.0.0.1:2379,127.0.0.1:22379", "--other"],
            environment: [:])
        #expect(c.kind == .etcd)
        #expect(c.addresses == ["127.0.0.1:2379", "127.0.0.1:22379"])
        let e = try RegistryConfiguration.parse(arguments: ["--registry=memory", "--registry_address=x:1"], environment: [:])
        #expect(e.kind == .memory)
        #expect(e.addresses == ["x:1"])
        #expect(try e.makeRegistry() is MemoryRegistry)
    }

    @Test func environmentAndFlagsWin() throws {
        let env = ["MICRO_REGISTRY": "etcd", "MICRO_REGISTRY_ADDRESS": "10.0.0.1:2379"]
        let fromEnv = try RegistryConfiguration.parse(arguments: [], environment: env)
        #expect(fromEnv.kind == .etcd)
        #expect(fromEnv.addresses == ["10.0.0.1:2379"])
        let flagWins = try RegistryConfiguration.parse(arguments: ["--registry", "local"], environment: env)
        #expect(flagWins.kind == .local)
        #expect(flagWins.addresses == ["10.0.0.1:2379"])
    }

    @Test func localDirectoryFromEnvironment() throws {
        let c = try RegistryConfiguration.parse(arguments: [], environment: ["MICRO_REGISTRY_DIR": "/tmp/x-reg"])
        #expect((try c.makeRegistry() as? LocalRegistry)?.directory == "/tmp/x-reg")
        #expect(LocalRegistry.defaultDirectory(environment: ["TMPDIR": "/var/tmp/"]).hasPrefix("/var/tmp/micro-registry-"))
    }

    @Test func errors() {
        #expect(throws: RegistryError.self) { try RegistryConfiguration.parse(arguments: ["--registry", "consul"], environment: [:]) }
        #expect(throws: RegistryError.self) { try RegistryConfiguration.parse(arguments: ["--registry"], environment: [:]) }
        #expect(throws: RegistryError.self) { try RegistryConfiguration.parse(arguments: [], environment: ["MICRO_REGISTRY": "zk"]) }
        #expect(throws: RegistryError.self) {
            _ = try RegistryConfiguration(kind: .etcd, addresses: ["not an address"]).makeRegistry()
        }
    }
}
