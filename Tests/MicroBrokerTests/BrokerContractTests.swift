import MicroBroker
import MicroCore
import MicroCoreTestSupport
import Testing

/// The broker contract on the embedded broker: the publisher and three subscribing instances, each with its own
/// listener, find each other through a local registry directory (as processes do), so deliveries cross loopback.
@Suite struct EmbeddedBrokerContractTests {
    @Test(arguments: BrokerContract.checks)
    func embeddedBroker(_ check: String) async throws {
        try await BrokerContract.run(check) {
            let f = try BrokerFixture(count: 4)
            return BrokersUnderTest(publisher: f.brokers[0], subscribers: Array(f.brokers[1...])) { await f.stop() }
        }
    }
}
