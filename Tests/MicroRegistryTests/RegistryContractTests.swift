import Foundation
import MicroCore
import MicroCoreTestSupport
import MicroRegistry
import MicroTestSupport
import Testing

/// The registry contract (MicroCoreTestSupport.RegistryContract) on the local registry and on real etcd (the
/// in-memory registry runs it in MicroInMemoryTests).
@Suite struct RegistryContractTests {
    static let local: RegistryFactory = {
        RegistryUnderTest(registry: LocalRegistry(directory: try makeTemporaryDirectory("micro-reg"), pollInterval: .milliseconds(50)))
    }

    static let etcd: RegistryFactory = {
        let cluster = try await EtcdCluster(size: 1)
        var c = EtcdConfiguration(endpoints: cluster.endpoints)
        c.requestTimeout = .milliseconds(1500)
        c.prefix = "/micro-contract-\(UUID().uuidString.prefix(8))/"
        let registry = try EtcdRegistry(configuration: c)
        let config = c
        return RegistryUnderTest(registry: registry, stop: {
            await registry.close()
            cluster.stop()
        }, renewingWriter: {
            // Another client of the same etcd: closing it stops its keep-alives, and its lease expires.
            let writer = try EtcdRegistry(configuration: config)
            return (writer, { await writer.close() })
        })
    }

    @Test(arguments: RegistryContract.checks)
    func localRegistry(_ check: String) async throws {
        try await RegistryContract.run(check, Self.local)
    }

    @Test(arguments: RegistryContract.checks)
    func etcdRegistry(_ check: String) async throws {
        try await RegistryContract.run(check, Self.etcd)
    }
}
