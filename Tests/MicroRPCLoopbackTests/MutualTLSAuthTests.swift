import MicroCore
import MicroEventLoop
import MicroMiddleware
import MicroRPC
import MicroTLS
import MicroUVTransport
import Testing

/// The mTLS peer identity reaches handlers and auth policies: over real TLS on loopback, the server's
/// ``AuthMiddleware`` names the caller by its verified client certificate, or by its bearer token.
@Suite("Auth over TLS", .serialized)
struct MutualTLSAuthTests {
    let certs: Certificates

    init() throws { certs = try Certificates.make() }

    /// A server over TLS (`requireClientCertificate` as given) with the auth middleware; `Who.Am` answers the
    /// caller's identity and how it was proven.
    func server(requireClientCertificate: Bool) async throws -> (EventLoopGroup, Server) {
        var tls = TLSConfiguration.server(certificateFile: certs.serverCert, keyFile: certs.serverKey)
        tls.trustRoots = .file(certs.ca)
        tls.requireClientCertificate = requireClientCertificate
        var transportConfig = UVTransportConfiguration()
        transportConfig.tls = try TLSContext(role: .server, configuration: tls)
        let group = EventLoopGroup(threads: 1)
        var config = ServerConfiguration(name: "svc")
        config.use {
            AuthMiddleware(AuthMiddleware.Configuration(
                tokens: StaticTokenVerifier(["t-ops": "ops"]),
                policy: AuthPolicy(defaultRule: .authenticated, endpoints: ["Admin.*": .allow(["ops"]), "Open.Ping": .open])))
        }
        let server = Server(configuration: config,
                            transport: UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0),
                                                         configuration: transportConfig))
        let answer: UnaryRequestHandler = { _, context in
            let method = switch context.identity?.method {
            case .certificate: "certificate"
            case .bearerToken: "token"
            default: "none"
            }
            return Response(body: Array("\(context.identity?.name ?? "-")|\(method)|\(context.peerCertificateSubject ?? "-")".utf8))
        }
        server.handle("Who.Am", answer)
        server.handle("Admin.Reset", answer)
        server.handle("Open.Ping", answer)
        try await server.start()
        return (group, server)
    }

    func client(withCertificate: Bool, token: String? = nil) throws -> (EventLoopGroup, UVClientTransport, Client) {
        var tls = TLSConfiguration.client(trusting: certs.ca)
        tls.serverName = "localhost"
        if withCertificate {
            tls.certificateChain = .file(certs.clientCert)
            tls.privateKey = .file(certs.clientKey)
        }
        var transportConfig = UVTransportConfiguration()
        transportConfig.tls = try TLSContext(role: .client, configuration: tls)
        let group = EventLoopGroup(threads: 1)
        let transport = UVClientTransport(group: group, configuration: transportConfig)
        var config = ClientConfiguration()
        config.retries = 0
        if let token { config.use { BearerTokenMiddleware(token) } }
        return (group, transport, Client(transport: transport, configuration: config))
    }

    func call(_ client: Client, _ server: Server, _ endpoint: String) async throws -> String {
        let r = try await client.call(Request(service: "svc", endpoint: endpoint, body: []),
                                      options: CallOptions(timeout: .seconds(20), address: server.serviceRecord.nodes[0].address))
        return String(decoding: r.body, as: UTF8.self)
    }

    @Test("a verified client certificate names the caller: the handler sees its common name and subject; the policy denies it an endpoint it does not allow")
    func certificateIdentity() async throws {
        let (serverGroup, server) = try await server(requireClientCertificate: true)
        let (clientGroup, transport, client) = try client(withCertificate: true)
        let who = try await call(client, server, "Who.Am")
        #expect(who.hasPrefix("micro client|certificate|"), "\(who)")
        #expect(who.contains("CN=micro client"), "the whole subject reaches the handler: \(who)")
        do {
            _ = try await call(client, server, "Admin.Reset")
            Issue.record("expected PERMISSION_DENIED")
        } catch let e as RPCError {
            #expect(e.code == .permissionDenied, "\(e)")
            #expect(e.message.contains("micro client"))
        }
        await transport.shutdown()
        await server.shutdown(gracePeriod: .milliseconds(100))
        #expect(clientGroup.shutdownGracefully())
        #expect(serverGroup.shutdownGracefully())
    }

    /// A unary call whose message comes in a DATA frame after its head is served as a stream; the request the
    /// handler gets must carry the peer's certificate all the same.
    @Test("a unary call sent as a stream (head, then its message in a DATA frame) names the caller by its certificate too")
    func certificateIdentityOnTheStreamPath() async throws {
        let (serverGroup, server) = try await server(requireClientCertificate: true)
        let (clientGroup, transport, _) = try client(withCertificate: true)
        let stream = try await transport.openStream(to: server.serviceRecord.nodes[0].address,
                                                    head: RequestHead(service: "svc", endpoint: "Who.Am"),
                                                    firstMessage: nil, endOfInput: false,
                                                    deadline: Timestamp.now.advanced(by: .seconds(20)))
        try await stream.send([])
        try await stream.finish()
        let answer = try await stream.collect()
        #expect(answer.trailers?.status ?? answer.head.status == .ok, "\(answer)")
        let who = String(decoding: answer.messages.first ?? [], as: UTF8.self)
        #expect(who.hasPrefix("micro client|certificate|"), "\(who)")
        #expect(who.contains("CN=micro client"), "\(who)")
        await transport.shutdown()
        await server.shutdown(gracePeriod: .milliseconds(100))
        #expect(clientGroup.shutdownGracefully())
        #expect(serverGroup.shutdownGracefully())
    }

    @Test("without a client certificate the caller is unauthenticated, unless its bearer token names it; open endpoints and health need nothing")
    func tokenOrNothing() async throws {
        let (serverGroup, server) = try await server(requireClientCertificate: false)
        let (g1, t1, anonymous) = try client(withCertificate: false)
        do {
            _ = try await call(anonymous, server, "Who.Am")
            Issue.record("expected UNAUTHENTICATED")
        } catch let e as RPCError {
            #expect(e.code == .unauthenticated, "\(e)")
        }
        #expect(try await call(anonymous, server, "Open.Ping") == "-|none|-")
        _ = try await call(anonymous, server, Server.healthEndpoint)
        let (g2, t2, ops) = try client(withCertificate: false, token: "t-ops")
        #expect(try await call(ops, server, "Admin.Reset") == "ops|token|-")
        let (g3, t3, forger) = try client(withCertificate: false, token: "t-forged")
        do {
            _ = try await call(forger, server, "Open.Ping")
            Issue.record("expected UNAUTHENTICATED for a bad token, even on an open endpoint")
        } catch let e as RPCError {
            #expect(e.code == .unauthenticated, "\(e)")
        }
        for t in [t1, t2, t3] { await t.shutdown() }
        await server.shutdown(gracePeriod: .milliseconds(100))
        for g in [g1, g2, g3, serverGroup] { #expect(g.shutdownGracefully()) }
    }
}
