import Foundation
import MicroEventLoop
import MicroRPC
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import MicroUVTransport
import Testing

private struct Hello: Codable, Sendable { var name: String }
private struct ReadmeGreeting: Codable, Sendable { var text: String }

@Suite("README example")
struct ReadmeExampleTests {
    @Test("the README's serving-and-calling example runs as written (with its own registry directory)")
    func example() async throws {
        let dir = try makeTemporaryDirectory("readme")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let group = EventLoopGroup(threads: 2)
        let registry = LocalRegistry(directory: dir)
        let server = Server(configuration: ServerConfiguration(name: "greeter"),
                            transport: UVServerTransport(group: group, address: try SocketAddress("127.0.0.1:0")),
                            registry: registry)
        server.handle("Greeter.Hello", Hello.self) { hello, context in
            ReadmeGreeting(text: "Hello, \(hello.name)!")
        }
        try await server.start()
        let transport = UVClientTransport(group: group)
        let selector = RegistrySelector(registry: registry)
        let client = Client(transport: transport, selector: selector)
        let greeting = try await client.call(service: "greeter", endpoint: "Greeter.Hello",
                                             request: Hello(name: "Ada"), as: ReadmeGreeting.self,
                                             options: CallOptions(timeout: .seconds(2)))
        #expect(greeting.text == "Hello, Ada!")
        await server.shutdown()
        selector.close()
        await transport.shutdown()
        #expect(group.shutdownGracefully())
    }
}
