import ArgumentParser
import Foundation
import Micro
import MicroCore
import MicroRPC
import Synchronization

/// `micro serve example`: runs an example service.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an example service.",
        subcommands: [Example.self]
    )

    struct HelloRequest: Codable, Sendable { var name: String }
    struct HelloResponse: Codable, Sendable { var greeting: String }
    struct AnnounceResponse: Codable, Sendable { var delivered: Int }

    /// The greeter (go-micro's helloworld) with one endpoint of every kind.
    struct Example: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The greeter: unary, streaming and publish/subscribe endpoints, metadata echo.",
            discussion: """
            Registers as "greeter" (--server_name to change) in the configured registry, prints \
            "listening <address> <node id>" and serves until SIGTERM/SIGINT, then deregisters, drains and prints "stopped". \
            With --admin_address, also serves /health and /metrics there (and prints "admin listening <url>").

            Endpoints:
              Greeter.Hello      {"name": "Ada"} -> {"greeting": "Hello, Ada!"}
              Greeter.Stream     a stream: each {"name": ...} -> {"greeting": ...}
              Greeter.Events     the messages received on the topic greeter.events (the last 100), as a JSON array
              Greeter.Announce   {"name": ...}: publishes {"greeting": ...} to the topic greeter.announcements
              Echo.Metadata      the request's metadata as a JSON object
              Echo.Call          the request's bytes back
              Sleep.Call         the body is a number of milliseconds to sleep, then "slept"

            Try, from another terminal:
              micro call greeter Greeter.Hello '{"name": "Ada"}'
              micro stream greeter Greeter.Stream '{"name": "Ada"}' '{"name": "Grace"}'
              micro publish greeter.events '{"say": "hi"}'
              micro call greeter Greeter.Events
            """
        )

        @OptionGroup var flags: ServiceFlags

        func run() async throws {
            // First: a SIGTERM/SIGINT from now on is kept until the server is ready to stop gracefully.
            let signals = AsyncSignals.install()
            let micro = try flags.makeService(name: "greeter", defaultLogLevel: .info, metrics: bootstrapMetrics())
            let server = micro.server
            let client = micro.client
            let events = Mutex<[String]>([])

            server.handle("Greeter.Hello", HelloRequest.self) { request, _ in
                HelloResponse(greeting: "Hello, \(request.name)!")
            }
            server.handleStream("Greeter.Stream") { stream in
                while let request = try await stream.receive(as: HelloRequest.self) {
                    try await stream.send(value: HelloResponse(greeting: "Hello, \(request.name)!"))
                }
            }
            server.handle("Greeter.Events") { _, _ in
                let list = events.withLock { $0 }
                return Response(body: Array("[\(list.joined(separator: ","))]".utf8))
            }
            server.handle("Greeter.Announce", HelloRequest.self) { request, _ in
                let greeting = HelloResponse(greeting: "Hello, \(request.name)!")
                let result = try await client.publish(topic: "greeter.announcements", greeting)
                return AnnounceResponse(delivered: result.delivered)
            }
            server.handle("Echo.Metadata") { request, _ in
                var object: [String: String] = [:]
                for (k, v) in request.metadata { object[k] = v }
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                return Response(body: Array(try encoder.encode(object)))
            }
            server.handle("Echo.Call") { request, _ in Response(body: request.body) }
            server.handle("Sleep.Call") { request, _ in
                let ms = Int(String(decoding: request.body, as: UTF8.self)) ?? 0
                try await Task.sleep(for: .milliseconds(max(0, min(ms, 600_000))))
                return Response(body: Array("slept".utf8))
            }
            if micro.broker != nil {
                _ = try await server.subscribe(topic: "greeter.events") { message in
                    // Kept as JSON: a message that is not JSON is stored as a JSON string.
                    let text = String(decoding: message.body, as: UTF8.self)
                    let json = (try? JSONSerialization.jsonObject(with: Data(message.body), options: [.fragmentsAllowed])) != nil
                        ? text : String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
                    events.withLock {
                        $0.append(json)
                        if $0.count > 100 { $0.removeFirst($0.count - 100) }
                    }
                }
            }
            do {
                try await micro.start()
            } catch {
                await micro.close()
                throw CLIError("could not start: \(error)", .unavailable)
            }
            say("listening \(server.serviceRecord.nodes[0].address) \(server.nodeID)")
            if let admin = micro.adminAddress { say("admin listening http://\(admin)") }
            // Serve until SIGTERM/SIGINT; then the server deregisters, drains and stops.
            await signals.wait()
            await micro.close()
            say("stopped")
        }
    }
}
