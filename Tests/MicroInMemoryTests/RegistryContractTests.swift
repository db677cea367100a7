import MicroCore
import MicroCoreTestSupport
import MicroInMemory
import Testing

/// The registry contract on the in-memory registry.
@Suite struct MemoryRegistryContractTests {
    @Test(arguments: RegistryContract.checks)
    func memoryRegistry(_ check: String) async throws {
        try await RegistryContract.run(check) { RegistryUnderTest(registry: MemoryRegistry()) }
    }
}
