import MicroInMemory
import MicroCore
import MicroBroker
import MicroEventLoop
import MicroRPC
import MicroUVTransport
import Testing

/// Publishing through the RPC layer: `Client.publish` to `Server.subscribe`, typed with the configured codecs.
@Suite struct RPCPublishTests {
    struct Order: Codable, Sendable, Equatable {
        var id: Int
        var item: String
    }

    @Test func typedPublishReachesATypedServerSubscriber() async throws {
        let f = try BrokerFixture(count: 2)
        try await withTimeout(20, "typed publish") {
            var serverConfiguration = ServerConfiguration(name: "orders")
            serverConfiguration.broker = f.brokers[0]
            let server = Server(configuration: serverConfiguration,
                                transport: UVServerTransport(group: f.group, address: try SocketAddress(host: "127.0.0.1", port: 0)))
            let got = Recorder<Order>()
            let types = Recorder<String>()
            let sub = try await server.subscribe(topic: "orders.created", Order.self) { order, message in
                got.append(order)
                types.append(message.contentType ?? "")
            }
            var clientConfiguration = ClientConfiguration()
            clientConfiguration.broker = f.brokers[1]
            let transport = UVClientTransport(group: f.group)
            let client = Client(transport: transport, configuration: clientConfiguration)

            let r = try await client.publish(topic: "orders.created", Order(id: 7, item: "tea"))
            #expect(r.delivered == 1)
            #expect(got.all == [Order(id: 7, item: "tea")])
            #expect(types.all == [ContentType.json])

            // Bytes no codec decodes as an Order: the subscriber's decoding error reaches the publisher.
            await #expect(throws: BrokerError.self) {
                try await client.publish(topic: "orders.created", message: bytes("not json"), metadata: ["Content-Type": ContentType.json])
            }
            await sub.unsubscribe()
            await transport.shutdown()
        }
        await f.stop()
    }

    @Test func withoutABrokerItIsAUsageError() async throws {
        let group = EventLoopGroup(threads: 1)
        let transport = UVClientTransport(group: group)
        let client = Client(transport: transport)
        await #expect(throws: RPCUsageError.self) { try await client.publish(topic: "t", message: [1]) }
        let server = Server(configuration: ServerConfiguration(name: "s"),
                            transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)))
        await #expect(throws: RPCUsageError.self) { _ = try await server.subscribe(topic: "t") { _ in } }
        await transport.shutdown()
        #expect(group.shutdownGracefully())
    }

    @Test func memoryBrokerWorksThroughTheRPCLayerToo() async throws {
        let broker = MemoryBroker()
        let group = EventLoopGroup(threads: 1)
        var serverConfiguration = ServerConfiguration(name: "s")
        serverConfiguration.broker = broker
        let server = Server(configuration: serverConfiguration,
                            transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0)))
        let got = Recorder<[UInt8]>()
        _ = try await server.subscribe(topic: "raw", queue: "g", [UInt8].self) { body, _ in got.append(body) }
        var clientConfiguration = ClientConfiguration()
        clientConfiguration.broker = broker
        let transport = UVClientTransport(group: group)
        let client = Client(transport: transport, configuration: clientConfiguration)
        #expect(try await client.publish(topic: "raw", [UInt8]([1, 2, 3])).delivered == 1)
        #expect(got.all == [[1, 2, 3]])
        // Stopping the server ends its subscriptions: nobody gets the next message.
        try await server.start()
        await server.shutdown(gracePeriod: .milliseconds(50))
        #expect(try await client.publish(topic: "raw", [UInt8]([4])).delivered == 0)
        #expect(got.all == [[1, 2, 3]])
        await broker.close()
        await transport.shutdown()
        #expect(group.shutdownGracefully())
    }
}
