import Foundation
import MicroTestSupport
import Testing

/// `micro` as a user runs it: against `micro serve example` in a child process, sharing a local registry
/// directory; every bad input gives one line and the exit code of its kind, never a backtrace.
@Suite(.serialized) struct MicroCommandTests {
    static var path: String { productsDirectory() + "/micro" }

    /// The example service in a child process, registered in its own local registry directory.
    final class Example: Sendable {
        let directory: String
        let child: ChildProcess
        let address: String

        init(_ extra: [String] = []) async throws {
            directory = try makeTemporaryDirectory("micro-cli")
            child = try ChildProcess(MicroCommandTests.path, ["serve", "example", "--registry", "local", "--registry_address", directory] + extra,
                                     logPath: directory + "-example.log")
            let deadline = ContinuousClock.now + .seconds(20)
            var found: String?
            while found == nil && ContinuousClock.now < deadline {
                found = child.output.split(separator: "\n").first { $0.hasPrefix("listening ") }.map { String($0.split(separator: " ")[1]) }
                if found == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard let found else { throw TimedOut(what: "micro serve example did not start: \(child.output)") }
            address = found
        }

        /// Runs `micro` with `arguments` and this example's registry.
        func micro(_ arguments: [String], input: Data? = nil) async throws -> (status: Int32, output: String) {
            try await runAsync(MicroCommandTests.path, arguments + ["--registry", "local", "--registry_address", directory], input: input, seconds: 30)
        }

        func stop() async {
            kill(child.pid, SIGTERM)
            #expect(await child.waitForExit(seconds: 20), "the example stops on SIGTERM: \(child.output)")
            #expect(child.output.contains("stopped"), "\(child.output)")
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test("call, stream, publish, describe, health and services against the example")
    func commandsAgainstTheExample() async throws {
        let example = try await Example()
        let hello = try await example.micro(["call", "greeter", "Greeter.Hello", #"{"name": "Ada"}"#])
        #expect(hello.status == 0, "\(hello.output)")
        #expect(hello.output == #"{"greeting":"Hello, Ada!"}"# + "\n")

        let direct = try await example.micro(["call", "--address", example.address, "greeter", "Greeter.Hello", #"{"name": "Bo"}"#])
        #expect(direct.output == #"{"greeting":"Hello, Bo!"}"# + "\n", "\(direct.output)")

        let stdin = try await example.micro(["call", "greeter", "Greeter.Hello", "-"], input: Data(#"{"name": "Cy"}"#.utf8))
        #expect(stdin.output == #"{"greeting":"Hello, Cy!"}"# + "\n", "\(stdin.output)")

        let meta = try await example.micro(["call", "greeter", "Echo.Metadata", "--metadata", "tenant=acme", "--metadata", "trace=1"])
        #expect(meta.output.contains(#""tenant":"acme""#) && meta.output.contains(#""trace":"1""#), "\(meta.output)")

        let stream = try await example.micro(["stream", "greeter", "Greeter.Stream", #"{"name": "A"}"#, #"{"name": "B"}"#])
        #expect(stream.status == 0, "\(stream.output)")
        #expect(stream.output == #"{"greeting":"Hello, A!"}"# + "\n" + #"{"greeting":"Hello, B!"}"# + "\n")

        let streamFromStdin = try await example.micro(["stream", "greeter", "Greeter.Stream"], input: Data("{\"name\": \"C\"}\n{\"name\": \"D\"}\n".utf8))
        #expect(streamFromStdin.output.split(separator: "\n") == [#"{"greeting":"Hello, C!"}"#, #"{"greeting":"Hello, D!"}"#], "\(streamFromStdin.output)")

        let published = try await example.micro(["publish", "greeter.events", #"{"say": "hi"}"#])
        #expect(published.status == 0, "\(published.output)")
        #expect(published.output.contains("delivered 1, skipped 0"), "\(published.output)")
        let events = try await example.micro(["call", "greeter", "Greeter.Events"])
        #expect(events.output == #"[{"say": "hi"}]"# + "\n", "\(events.output)")

        let describe = try await example.micro(["describe", "greeter"])
        #expect(describe.status == 0, "\(describe.output)")
        let records = try JSONSerialization.jsonObject(with: Data(describe.output.utf8)) as? [[String: Any]]
        let record = try #require(records?.first)
        #expect(record["name"] as? String == "greeter")
        #expect(record["version"] as? String == "latest")
        let endpoints = (record["endpoints"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
        #expect(Set(["Greeter.Hello", "Greeter.Stream", "Echo.Metadata", "Health.Check"]).isSubset(of: endpoints), "\(endpoints)")
        #expect((record["nodes"] as? [[String: Any]])?.first?["address"] as? String == example.address)

        let health = try await example.micro(["health", "greeter"])
        #expect(health.status == 0, "\(health.output)")
        #expect(health.output.contains("\(example.address) SERVING"), "\(health.output)")

        let services = try await example.micro(["services"])
        #expect(services.output.split(separator: "\n").contains("greeter latest \(example.address)"), "\(services.output)")
        await example.stop()
    }

    @Test("every bad input: one line, its own exit code, no backtrace")
    func badInputs() async throws {
        let example = try await Example()
        let closedPort = freePort()
        let registered = try await example.micro(["registry", "register", "dead", "dead-1", "127.0.0.1:\(closedPort)"])
        #expect(registered.status == 0, "\(registered.output)")
        let cases: [(arguments: [String], status: Int32, says: String)] = [
            (["call", "--nope", "greeter", "Greeter.Hello"], 64, "--nope"),
            (["call", "--timeout", "abc", "greeter", "Greeter.Hello"], 64, "abc"),
            (["call", "--retries", "-5", "greeter", "Greeter.Hello"], 64, "retries"),
            (["call", "greeter", "Greeter.Hello", "--selector", "fastest"], 64, "fastest"),
            (["call", "greeter"], 64, "endpoint"),
            (["bench", "--connections", "0"], 64, "--connections"),
            (["bench", "--middleware", "bogus"], 64, "bogus"),
            // A list of choices is joined into the line, not cut off.
            (["bench", "--middleware", "bogus"], 64, "none, empty, stock"),
            (["selector-bench", "--calls", "x"], 64, "calls"),
            (["chaos", "--scenario", "flood"], 64, "flood"),
            (["chaos", "--callers", "0"], 64, "--callers"),
            (["bench", "--size", "-1"], 64, "size"),
            (["bench", "--rate", "0"], 64, "--rate"),
            (["bench", "--chain-cost", "--chains", "none,bogus"], 64, "unknown chain bogus"),
            (["bench", "--chain-cost", "--calls", "0"], 64, "--calls"),
            (["bench", "--chain-cost", "--side", "up"], 64, "up"),
            (["bench", "--rate", "100", "--mode", "stream"], 64, "--rate"),
            (["bench", "--layer", "transport", "--service", "greeter"], 64, "--layer"),
            (["sidecar", "--address", "nowhere"], 64, "--address"),
            (["serve", "example", "--admin_address", "x"], 64, "--admin_address"),
            (["call", "greeter", "Greeter.Hello", "{name: Ada"], 65, "not valid JSON"),
            (["publish", "greeter.events", "[1,"], 65, "not valid JSON"),
            (["call", "nosuch", "X.Y", "{}"], 68, "unknown service nosuch"),
            (["describe", "nosuch"], 68, "unknown service nosuch"),
            (["call", "dead", "X.Y", "{}"], 69, "unavailable"),
            (["health", "dead"], 69, "no node"),
            (["call", "greeter", "No.Such", "{}"], 70, "unknown endpoint"),
            (["call", "greeter", "Sleep.Call", "5000", "--timeout", "200ms"], 124, "deadline"),
            (["call", "greeter", "Greeter.Hello", #"{"nom": 1}"#], 1, "invalidArgument"),
        ]
        for c in cases {
            let r = try await example.micro(c.arguments)
            #expect(r.status == c.status, "micro \(c.arguments): \(r.output)")
            // One error line; `health` prints a line per node before it.
            let lines = r.output.split(separator: "\n")
            #expect(lines.filter { $0.hasPrefix("micro: ") }.count == 1 && lines.last?.hasPrefix("micro: ") == true, "micro \(c.arguments): \(r.output)")
            if c.arguments.first != "health" { #expect(lines.count == 1, "micro \(c.arguments): one line, got \(r.output)") }
            #expect(r.output.contains(c.says), "micro \(c.arguments): \(r.output)")
            #expect(!r.output.contains("Fatal error") && !r.output.contains("Backtrac"), "\(r.output)")
        }
        let unknown = try await runAsync(Self.path, ["frobnicate"])
        #expect(unknown.status == 64 && unknown.output.split(separator: "\n").count == 1 && unknown.output.contains("frobnicate"), "\(unknown.output)")
        await example.stop()
    }

    @Test("--help everywhere, exit 0", arguments: [
        [], ["--help"], ["call", "--help"], ["stream", "--help"], ["publish", "--help"], ["subscribe", "--help"], ["services", "--help"],
        ["describe", "--help"], ["health", "--help"], ["registry", "--help"], ["registry", "watch", "--help"], ["bench", "--help"],
        ["serve", "example", "--help"], ["sidecar", "--help"], ["selector-bench", "--help"], ["chaos", "--help"],
    ])
    func help(_ arguments: [String]) async throws {
        let r = try await runAsync(Self.path, arguments)
        #expect(r.status == 0, "micro \(arguments): \(r.output)")
        #expect(r.output.contains("USAGE: micro"), "micro \(arguments): \(r.output)")
    }

    @Test("bench: the embedded server, unary and stream; the example through discovery")
    func bench() async throws {
        let embedded = try await runAsync(Self.path, ["bench", "--duration", "0.5", "--warmup", "0.1", "--concurrency", "4"], seconds: 60)
        #expect(embedded.status == 0, "\(embedded.output)")
        #expect(embedded.output.contains("throughput: ") && embedded.output.contains("latency: p50") && embedded.output.contains("client CPU per call"), "\(embedded.output)")
        #expect(embedded.output.contains(" calls/s  0 errors  p50 "), "a progress line: \(embedded.output)")
        let stream = try await runAsync(Self.path, ["bench", "--mode", "stream", "--duration", "0.5", "--warmup", "0.1", "--concurrency", "2"], seconds: 60)
        #expect(stream.status == 0, "\(stream.output)")
        let transport = try await runAsync(Self.path, ["bench", "--layer", "transport", "--middleware", "none", "--duration", "0.5", "--warmup", "0.1", "--quiet"], seconds: 60)
        #expect(transport.status == 0 && transport.output.contains("server CPU per call"), "\(transport.output)")
        let stock = try await runAsync(Self.path, ["bench", "--middleware", "stock", "--duration", "0.5", "--warmup", "0.1", "--quiet"], seconds: 60)
        #expect(stock.status == 0 && stock.output.contains("middleware: stock"), "\(stock.output)")
        // Open loop: the calls sent in the measured second and the ones still due at its end (counted as skipped)
        // add up to the rate's count: 400, give or take a call per worker at the edges and the calls a stall on a
        // busy machine moves across the window's start. A closed loop would make thousands.
        let paced = try await runAsync(Self.path, ["bench", "--rate", "400", "--concurrency", "8", "--connections", "4", "--duration", "1",
                                                   "--warmup", "0.2", "--json", "--quiet"], seconds: 60)
        #expect(paced.status == 0 && paced.output.contains("open loop at 400 calls/s"), "\(paced.output)")
        let pacedLine = try #require(paced.output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(paced.output)")
        let pacedFigures = try #require(try JSONSerialization.jsonObject(with: Data(pacedLine.utf8)) as? [String: Any])
        let pacedCalls = pacedFigures["calls"] as? Int ?? 0
        let pacedSkipped = pacedFigures["skipped"] as? Int ?? -1000
        #expect(pacedCalls > 0 && (340...460).contains(pacedCalls + pacedSkipped) && pacedFigures["errors"] as? Int == 0, "\(pacedLine)")
        // The chain-cost lab, one side and two chains (what Benchmarks/count-instructions runs under valgrind).
        let lab = try await runAsync(Self.path, ["bench", "--chain-cost", "--chains", "none,stock", "--calls", "200", "--rounds", "1",
                                                 "--side", "server"], seconds: 60)
        #expect(lab.status == 0 && lab.output.contains("stock: server ") && lab.output.contains("(+"), "\(lab.output)")
        #expect(!lab.output.contains("client"), "\(lab.output)")
        let picks = try await runAsync(Self.path, ["selector-bench", "--calls", "2000", "--nodes", "3"], seconds: 60)
        #expect(picks.status == 0 && picks.output.contains("lookups in 10,000 calls: 0"), "\(picks.output)")
        let example = try await Example()
        let remote = try await example.micro(["bench", "--service", "greeter", "--duration", "0.5", "--warmup", "0.1", "--concurrency", "2"])
        #expect(remote.status == 0, "\(remote.output)")
        #expect(remote.output.contains("service greeter (discovery)"), "\(remote.output)")
        #expect(remote.output.contains(" ok, 0 errors in "), "\(remote.output)")
        // By address (the example's service name by default), with the server's CPU read from /proc and a JSON line.
        let direct = try await runAsync(Self.path, ["bench", "--address", example.address, "--server-pid", "\(example.child.pid)", "--json",
                                                    "--quiet", "--duration", "0.5", "--warmup", "0.1", "--concurrency", "2", "--size", "16"], seconds: 60)
        #expect(direct.status == 0, "\(direct.output)")
        #expect(direct.output.contains("(process \(example.child.pid), all threads)"), "\(direct.output)")
        let line = try #require(direct.output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(direct.output)")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect((figures["calls"] as? Int ?? 0) > 0 && figures["errors"] as? Int == 0, "\(line)")
        #expect(figures["server_cpu_us_per_call"] as? Double != nil && figures["p99_us"] as? Int != nil, "\(line)")
        let notRemote = try await runAsync(Self.path, ["bench", "--server-pid", "1"], seconds: 30)
        #expect(notRemote.status == 64 && notRemote.output.contains("--server-pid"), "\(notRemote.output)")
        await example.stop()
    }

    @Test("micro sidecar in front of the example: curl calls it; the example's admin address serves /health and /metrics")
    func sidecarAndAdmin() async throws {
        let example = try await Example(["--admin_address", "127.0.0.1:0"])
        let admin = try #require(example.child.output.split(separator: "\n").first { $0.hasPrefix("admin listening ") }?.split(separator: " ").last.map(String.init))
        let port = freePort()
        let sidecar = try ChildProcess(Self.path, ["sidecar", "--address", "127.0.0.1:\(port)", "--registry", "local", "--registry_address", example.directory],
                                       logPath: example.directory + "-sidecar.log")
        try await eventually(20, "the sidecar listens") { sidecar.output.contains("sidecar listening http://127.0.0.1:\(port)") }
        let hello = try await runAsync("/usr/bin/curl", ["-sS", "-d", #"{"name": "Ada"}"#, "http://127.0.0.1:\(port)/greeter/Greeter.Hello"])
        #expect(hello.output == #"{"greeting":"Hello, Ada!"}"#, "\(hello.output)")
        let health = try await runAsync("/usr/bin/curl", ["-sS", "\(admin)/health"])
        #expect(health.output == #"{"status":"SERVING"}"#, "\(health.output)")
        let metrics = try await runAsync("/usr/bin/curl", ["-sS", "\(admin)/metrics"])
        #expect(metrics.output.contains(#"micro_server_calls_total{service="greeter",endpoint="Greeter.Hello"} 1"#), "\(metrics.output)")
        kill(sidecar.pid, SIGTERM)
        #expect(await sidecar.waitForExit(seconds: 20), "\(sidecar.output)")
        #expect(sidecar.status == 0 && sidecar.output.contains("stopped"), "\(sidecar.output)")
        await example.stop()
    }
}
