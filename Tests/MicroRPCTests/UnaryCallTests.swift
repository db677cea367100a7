import MicroInMemory
import Foundation
import MicroCore
import MicroRPC
import SwiftProtobuf
import Testing

struct Greeting: Codable, Sendable, Equatable {
    var name: String
    var count: Int
}

@Suite("Unary calls and codecs", .serialized)
struct UnaryCallTests {
    @Test("the same calls work on the in-memory transport")
    func inMemory() async throws {
        let network = InMemoryNetwork()
        let serverTransport = InMemoryServer(network: network, address: "mem-1")
        let server = Server(configuration: ServerConfiguration(name: "svc"), transport: serverTransport)
        server.handle("Echo.Call") { req, _ in Response(body: req.body.reversed()) }
        server.handle("Greeter.Hello", Greeting.self) { g, _ in Greeting(name: "hello " + g.name, count: g.count + 1) }
        try await server.start()
        let client = Client(transport: InMemoryTransport(network: network))
        let r = try await client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1, 2, 3]), options: CallOptions(address: "mem-1"))
        #expect(r.body == [3, 2, 1])
        let g = try await client.call(service: "svc", endpoint: "Greeter.Hello", request: Greeting(name: "x", count: 1), as: Greeting.self, options: CallOptions(address: "mem-1"))
        #expect(g == Greeting(name: "hello x", count: 2))
        await server.shutdown(gracePeriod: .milliseconds(50))
    }

    @Test("JSON with Codable, protobuf binary and protobuf JSON each round-trip through a typed handler")
    func codecs() async throws {
        let s = try await RunningServer.start { server in
            server.handle("Greeter.Hello", Greeting.self) { g, _ in Greeting(name: g.name.uppercased(), count: g.count * 2) }
            server.handle("Proto.Upper", Google_Protobuf_StringValue.self) { v, _ in
                Google_Protobuf_StringValue(v.value.uppercased())
            }
            server.handle("Proto.Struct", Google_Protobuf_Struct.self) { v, _ in
                var out = v
                out.fields["answered"] = Google_Protobuf_Value(boolValue: true)
                return out
            }
        }
        let c = RunningClient.start()
        let o = CallOptions(address: s.address)
        let g = try await c.client.call(service: "svc", endpoint: "Greeter.Hello", request: Greeting(name: "ada", count: 21), as: Greeting.self, options: o)
        #expect(g == Greeting(name: "ADA", count: 42))
        let p = try await c.client.call(service: "svc", endpoint: "Proto.Upper", request: Google_Protobuf_StringValue("proto"), as: Google_Protobuf_StringValue.self, options: o)
        #expect(p.value == "PROTO")
        let pj = try await c.client.call(service: "svc", endpoint: "Proto.Upper", request: Google_Protobuf_StringValue("json"), as: Google_Protobuf_StringValue.self,
                                         contentType: ContentType.json, options: o)
        #expect(pj.value == "JSON")
        var st = Google_Protobuf_Struct()
        st.fields["n"] = Google_Protobuf_Value(numberValue: 3)
        let sr = try await c.client.call(service: "svc", endpoint: "Proto.Struct", request: st, as: Google_Protobuf_Struct.self, options: o)
        #expect(sr.fields["answered"]?.boolValue == true)
        #expect(sr.fields["n"]?.numberValue == 3)
        // The raw wire: JSON is JSON.
        let raw = try await c.client.call(Request(service: "svc", endpoint: "Greeter.Hello", contentType: ContentType.json,
                                                  body: bytes(#"{"name":"bo","count":1}"#)), options: o)
        let decoded = try JSONDecoder().decode(Greeting.self, from: Data(raw.body))
        #expect(decoded == Greeting(name: "BO", count: 2))
        await c.stop()
        await s.stop()
    }

    @Test("an unknown content type, undecodable bytes, an unknown endpoint and a throwing handler each get a clear error")
    func errors() async throws {
        struct Boom: Error {}
        let s = try await RunningServer.start { server in
            server.handle("Greeter.Hello", Greeting.self) { g, _ in g }
            server.handle("Fails.Typed") { _, _ in throw RPCError(.failedPrecondition, "not today", metadata: ["why": "test"]) }
            server.handle("Fails.Other") { _, _ in throw Boom() }
        }
        let c = RunningClient.start()
        let o = CallOptions(address: s.address)
        await expectError(c.client, o, Request(service: "svc", endpoint: "Greeter.Hello", contentType: "text/x-unknown", body: [1]), .invalidArgument, "unsupported content type \"text/x-unknown\"")
        await expectError(c.client, o, Request(service: "svc", endpoint: "Greeter.Hello", contentType: ContentType.json, body: bytes("{not json")), .invalidArgument, "could not decode")
        await expectError(c.client, o, Request(service: "svc", endpoint: "No.Such", body: []), .unimplemented, "unknown endpoint")
        await expectError(c.client, o, Request(service: "svc", endpoint: "Fails.Typed", body: []), .failedPrecondition, "not today")
        await expectError(c.client, o, Request(service: "svc", endpoint: "Fails.Other", body: []), .internalError, "Boom")
        do {
            _ = try await c.client.call(Request(service: "svc", endpoint: "Fails.Typed", body: []), options: o)
        } catch let e as RPCError {
            #expect(e.metadata["why"] == "test")
        }
        // Misuse is a different error: nothing says where the service runs.
        do {
            _ = try await c.client.call(Request(service: "svc", endpoint: "Echo", body: []))
            Issue.record("expected a usage error")
        } catch is RPCUsageError {
        } catch {
            Issue.record("expected RPCUsageError, got \(error)")
        }
        await c.stop()
        await s.stop()
    }

    @Test("Health.Check answers SERVING, and NOT_SERVING once the server is stopping")
    func health() async throws {
        let s = try await RunningServer.start { server in
            server.handle("Sleep.Call") { _, _ in
                try await Task.sleep(for: .milliseconds(500))
                return Response(body: [])
            }
        }
        let c = RunningClient.start()
        let o = CallOptions(address: s.address)
        let h = try await c.client.call(Request(service: "svc", endpoint: Server.healthEndpoint, body: []), options: o)
        #expect(text(h.body) == #"{"status":"SERVING"}"#)
        #expect(s.server.isServing)
        // Keep a call in flight so that the stop takes a while.
        let client = c.client
        let inFlight = Task { try await client.call(Request(service: "svc", endpoint: "Sleep.Call", body: []), options: o) }
        try await eventually(5, "call in flight") { s.server.inFlightCalls == 1 }
        let server = s.server
        let stopping = Task { await server.shutdown(gracePeriod: .seconds(5)) }
        try await eventually(5, "not serving") { !server.isServing }
        // A health request that still reaches the server (its connection raced the DRAIN) hears NOT_SERVING.
        let head = RequestHead(service: "svc", endpoint: Server.healthEndpoint)
        let reply = await server.unaryHandler(for: head)!.handle(UnaryRequest(head: head, message: [], peer: "test", receivedAt: .now))
        #expect(reply.message.map(text) == #"{"status":"NOT_SERVING"}"#)
        _ = try await inFlight.value
        await stopping.value
        await c.stop()
        await s.stop()
    }
}
