import MicroCore
import MicroCoreTestSupport
import MicroInMemory
import Testing

/// The broker contract on the in-memory broker (one instance publishes and subscribes).
@Suite struct MemoryBrokerContractTests {
    @Test(arguments: BrokerContract.checks)
    func memoryBroker(_ check: String) async throws {
        try await BrokerContract.run(check) {
            let broker = MemoryBroker()
            return BrokersUnderTest(publisher: broker, subscribers: [broker]) { await broker.close() }
        }
    }
}
