import MicroCore
import MicroCoreTestSupport
import MicroInMemory
import Testing

/// The transport contract, on the in-memory transport.
@Suite("Transport contract: in-memory")
struct InMemoryTransportContractTests {
    static let make: TransportFactory = { handler in
        let network = InMemoryNetwork()
        let server = InMemoryServer(network: network, address: "contract")
        try await server.serve(handler)
        return TransportUnderTest(client: InMemoryTransport(network: network), server: server, address: "contract") {
            await server.drain(gracePeriod: .milliseconds(100))
        }
    }

    @Test(arguments: TransportContract.checks)
    func contract(_ check: String) async throws {
        try await TransportContract.run(check, Self.make)
    }
}
