import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Testing

@Suite("Auth middleware")
struct AuthTests {
    /// A server whose endpoints answer with the caller's identity: `Echo.Who` (any authenticated caller),
    /// `Admin.Do` (alice only), `Public.Ping` (open).
    static func server(handled: Hits) async throws -> RunningServer {
        try await RunningServer.start(configure: { config in
            config.use {
                AuthMiddleware(.init(
                    tokens: StaticTokenVerifier(["alice-token": "alice", "bob-token": "bob"]),
                    policy: AuthPolicy(defaultRule: .authenticated, endpoints: ["Admin.*": .allow(["alice"]), "Public.Ping": .open])
                ))
            }
        }) { server in
            for endpoint in ["Echo.Who", "Admin.Do", "Public.Ping"] {
                server.handle(endpoint) { _, context in
                    handled.add()
                    let who = context.identity.map { "\($0.name) \($0.method == .bearerToken ? "token" : "other")" } ?? "nobody"
                    return Response(body: bytes(who))
                }
            }
        }
    }

    static func client(token: String?) -> RunningClient {
        RunningClient.start { config in
            if let token { config.use { BearerTokenMiddleware(token) } }
        }
    }

    static func request(_ endpoint: String, metadata: Metadata = [:]) -> Request {
        Request(service: "svc", endpoint: endpoint, body: [], metadata: metadata)
    }

    @Test("no token on a protected endpoint: unauthenticated, the handler does not run")
    func noToken() async throws {
        let handled = Hits()
        let s = try await Self.server(handled: handled)
        let c = Self.client(token: nil)
        let e = try #require(await outcome(c.client, Self.request("Echo.Who"), CallOptions(address: s.address)).rpcError)
        #expect(e.code == .unauthenticated, "\(e)")
        #expect(handled.count == 0)
        await c.stop()
        await s.stop()
    }

    @Test("a token that does not verify, or a malformed authorization header: unauthenticated")
    func wrongToken() async throws {
        let handled = Hits()
        let s = try await Self.server(handled: handled)
        let options = CallOptions(address: s.address)
        let wrong = Self.client(token: "mallory-token")
        #expect(await outcome(wrong.client, Self.request("Echo.Who"), options).rpcError?.code == .unauthenticated)
        // A wrong token is refused even on an open endpoint: a bad credential is never ignored.
        #expect(await outcome(wrong.client, Self.request("Public.Ping"), options).rpcError?.code == .unauthenticated)
        let plain = Self.client(token: nil)
        let basic = Self.request("Echo.Who", metadata: ["authorization": "Basic YWxpY2U6cHc="])
        #expect(await outcome(plain.client, basic, options).rpcError?.code == .unauthenticated)
        let empty = Self.request("Echo.Who", metadata: ["authorization": "Bearer "])
        #expect(await outcome(plain.client, empty, options).rpcError?.code == .unauthenticated)
        #expect(handled.count == 0)
        await wrong.stop()
        await plain.stop()
        await s.stop()
    }

    @Test("a good token not in the endpoint's allow list: permissionDenied")
    func notAllowed() async throws {
        let handled = Hits()
        let s = try await Self.server(handled: handled)
        let bob = Self.client(token: "bob-token")
        let e = try #require(await outcome(bob.client, Self.request("Admin.Do"), CallOptions(address: s.address)).rpcError)
        #expect(e.code == .permissionDenied, "\(e)")
        #expect(e.message.contains("bob"), "\(e.message)")
        #expect(handled.count == 0)
        // Bob may call what any authenticated caller may.
        let r = try await bob.client.call(Self.request("Echo.Who"), options: CallOptions(address: s.address))
        #expect(text(r.body) == "bob token")
        await bob.stop()
        await s.stop()
    }

    @Test("an allowed caller gets through and the handler sees its identity")
    func allowed() async throws {
        let handled = Hits()
        let s = try await Self.server(handled: handled)
        let alice = Self.client(token: "alice-token")
        let options = CallOptions(address: s.address)
        #expect(text(try await alice.client.call(Self.request("Admin.Do"), options: options).body) == "alice token")
        #expect(text(try await alice.client.call(Self.request("Echo.Who"), options: options).body) == "alice token")
        // The scheme is case-insensitive.
        let plain = Self.client(token: nil)
        let lower = Self.request("Admin.Do", metadata: ["authorization": "bearer alice-token"])
        #expect(text(try await plain.client.call(lower, options: options).body) == "alice token")
        #expect(handled.count == 3)
        await alice.stop()
        await plain.stop()
        await s.stop()
    }

    @Test("an open endpoint works without a token (no identity); Health.Check is always open")
    func openEndpoints() async throws {
        let handled = Hits()
        let s = try await Self.server(handled: handled)
        let anonymous = Self.client(token: nil)
        let options = CallOptions(address: s.address)
        #expect(text(try await anonymous.client.call(Self.request("Public.Ping"), options: options).body) == "nobody")
        let health = try await anonymous.client.call(Self.request(Server.healthEndpoint), options: options)
        #expect(text(health.body).contains("SERVING"))
        // A caller with a token is identified on an open endpoint too.
        let alice = Self.client(token: "alice-token")
        #expect(text(try await alice.client.call(Self.request("Public.Ping"), options: options).body) == "alice token")
        await anonymous.stop()
        await alice.stop()
        await s.stop()
    }

    @Test("the policy: an exact rule beats a prefix, the longest prefix wins, else the default")
    func policyMatching() {
        let policy = AuthPolicy(defaultRule: .open, endpoints: [
            "Admin.*": .authenticated,
            "Admin.Users.*": .allow(["root"]),
            "Admin.Users.List": .open,
        ])
        #expect(policy.rule(for: "Admin.Stats") == .authenticated)
        #expect(policy.rule(for: "Admin.Users.Delete") == .allow(["root"]))
        #expect(policy.rule(for: "Admin.Users.List") == .open)
        #expect(policy.rule(for: "Greeter.Hello") == .open)
    }
}
