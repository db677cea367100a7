import Foundation
import Micro
import MicroCore
import MicroInMemory
import MicroRPC
import MicroTestSupport
import Testing

struct Hello: Codable, Sendable { var name: String }
struct Greeting: Codable, Sendable { var text: String }

/// MicroService wires what its options name: calls by service name through the registry and selector, publishing
/// through the broker, TLS and mTLS from files, and a clean close.
@Suite struct MicroServiceTests {
    /// Options for a service that lives in this process only: memory registry, broker and transport.
    func inMemory() -> ServiceOptions {
        var o = ServiceOptions()
        o.registry.kind = .memory
        o.broker = .memory
        o.transport = .memory
        o.transportThreads = 1
        return o
    }

    @Test func callsByNameAndPublishesInMemory() async throws {
        let name = "svc-\(UUID().uuidString.prefix(8))"
        let network = InMemoryNetwork()
        let server = try MicroService(name: name, options: inMemory(), network: network)
        server.server.handle("Greeter.Hello", Hello.self) { hello, _ in Greeting(text: "Hello, \(hello.name)!") }
        let got = Recorder<String>()
        _ = try await server.server.subscribe(topic: "\(name).events") { message in got.append(String(decoding: message.body, as: UTF8.self)) }
        try await server.start()
        #expect(server.name == name)
        let caller = try MicroService(name: "caller", options: inMemory(), network: network)
        let greeting = try await caller.client.call(service: name, endpoint: "Greeter.Hello", request: Hello(name: "Ada"), as: Greeting.self)
        #expect(greeting.text == "Hello, Ada!")
        let published = try await server.client.publish(topic: "\(name).events", message: Array("e1".utf8))
        #expect(published.delivered == 1)
        #expect(got.all == ["e1"])
        await caller.close()
        await server.close()
        #expect(server.group.shutdownGracefully(), "the loops closed clean")
        await server.close()  // idempotent
    }

    @Test func optionsReachTheServer() async throws {
        var o = inMemory()
        o.serverName = "renamed-\(UUID().uuidString.prefix(8))"
        o.serverVersion = "v7"
        o.serverMetadata = ["zone": "z1"]
        let service = try MicroService(name: "ignored", options: o)
        service.server.handle("A.B") { request, _ in Response(body: request.body) }
        try await service.start()
        let records = try await service.registry.getService(o.serverName!)
        #expect(records.map(\.version) == ["v7"])
        #expect(records.first?.nodes.first?.metadata["zone"] == "z1")
        #expect(records.first?.endpoints.map(\.name).contains("A.B") == true)
        await service.close()
    }

    @Test func badOptionsAreRefusedBeforeAnythingStarts() {
        var o = ServiceOptions()
        o.registry.kind = .memory
        o.serverAddress = "not-an-address"
        #expect(throws: ServiceOptionsError.self) { try MicroService(name: "x", options: o) }
        var t = ServiceOptions()
        t.registry.kind = .memory
        t.tls = ServiceOptions.TLSFiles(certificate: "/nonexistent.pem", key: "/nonexistent.key")
        #expect(throws: ServiceOptionsError.self) { try MicroService(name: "x", options: t) }
    }

    @Test("mTLS from files: the caller's certificate names it to the handler; a caller without one is refused")
    func mutualTLS() async throws {
        let certs = try Certificates.make()
        let dir = try makeTemporaryDirectory("micro-service")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var base = ServiceOptions()
        base.registry.kind = .local
        base.registry.directory = dir
        base.broker = .none
        base.transportThreads = 1
        var serverOptions = base
        serverOptions.tls = ServiceOptions.TLSFiles(certificate: certs.serverCert, key: certs.serverKey, certificateAuthority: certs.ca,
                                                    requireClientCertificate: true)
        let name = "secure-\(UUID().uuidString.prefix(8))"
        let server = try MicroService(name: name, options: serverOptions)
        server.server.handle("Who.Am") { _, context in Response(body: Array((context.peerCertificateSubject ?? "-").utf8)) }
        try await server.start()

        var callerOptions = base
        callerOptions.tls = ServiceOptions.TLSFiles(certificate: certs.clientCert, key: certs.clientKey, certificateAuthority: certs.ca,
                                                    serverName: "localhost")
        let caller = try MicroService(name: "caller", options: callerOptions)
        let who = try await caller.client.call(Request(service: name, endpoint: "Who.Am", body: []), options: CallOptions(timeout: .seconds(10)))
        #expect(String(decoding: who.body, as: UTF8.self).contains("micro client"))

        var anonymousOptions = base
        anonymousOptions.tls = ServiceOptions.TLSFiles(certificateAuthority: certs.ca, serverName: "localhost")
        var noWait = ClientConfiguration()
        noWait.waitForNode = false
        noWait.retries = 0
        let anonymous = try MicroService(name: "anonymous", options: anonymousOptions, client: noWait)
        await #expect(throws: RPCError.self) {
            _ = try await anonymous.client.call(Request(service: name, endpoint: "Who.Am", body: []), options: CallOptions(timeout: .seconds(5)))
        }
        await anonymous.close()
        await caller.close()
        await server.close()
    }
}
