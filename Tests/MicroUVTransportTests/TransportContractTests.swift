import MicroCore
import MicroCoreTestSupport
import MicroEventLoop
import MicroTLS
import MicroUVTransport
import Testing

/// The transport contract, on the libuv transport, plain and over TLS.
@Suite("Transport contract: libuv")
struct UVTransportContractTests {
    static func make(tls: Bool) -> TransportFactory {
        { handler in
            var serverConfig = UVTransportConfiguration()
            var clientConfig = UVTransportConfiguration()
            if tls {
                let certs = try Certificates.make()
                serverConfig.tls = try TLSContext(role: .server, configuration: .server(certificateFile: certs.serverCert, keyFile: certs.serverKey))
                var cc = TLSConfiguration.client(trusting: certs.ca)
                cc.serverName = "localhost"
                clientConfig.tls = try TLSContext(role: .client, configuration: cc)
            }
            let h = try await Harness.start(server: serverConfig, client: clientConfig, serverHandler: handler)
            return TransportUnderTest(client: h.client, server: h.server, address: h.address) { await h.stop() }
        }
    }

    @Test(arguments: TransportContract.checks)
    func plain(_ check: String) async throws {
        try await TransportContract.run(check, Self.make(tls: false))
    }

    @Test(arguments: TransportContract.checks)
    func tls(_ check: String) async throws {
        try await TransportContract.run(check, Self.make(tls: true))
    }
}
