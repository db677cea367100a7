import ArgumentParser
import Foundation
import Glibc
import Micro
import MicroBroker
import MicroCore
import MicroEventLoop
import MicroRPC
import MicroTLS
import MicroUVTransport
import Synchronization

/// `micro bench`: a bounded load run of echo calls, against an embedded server on loopback (the default) or a
/// running service, with live progress and a final table.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load-test echo calls: an embedded server on loopback by default, or a running service.",
        discussion: """
        Without --address or --service, starts an echo server in this process (its own event loop; TLS with \
        --tls_cert/--tls_key, which the client then trusts through --tls_ca or --tls_insecure) and calls it. \
        With --address host:port or --service NAME (through discovery), calls --endpoint of that service with \
        raw bytes (the example's Echo.Call by default). Prints a progress line every second (rate, errors, p50/p99 \
        so far) and a final table. Exits 1 when a call failed.
        Example: micro bench --connections 4 --concurrency 128 --size 256 --duration 10
        """
    )

    @OptionGroup var flags: ServiceFlags
    @Option(help: "Connections to the server.") var connections = 1
    @Option(help: "Calls in flight (streams in --mode stream).") var concurrency = 64
    @Option(help: "Bytes per request.") var size = 64
    @Option(help: "Send this JSON body (checked) instead of --size bytes; answers are then not compared with it.") var body: String?
    @Option(help: "Measured time: 5, 10s, 500ms.") var duration = DurationArgument(.seconds(5), text: "5s")
    @Option(help: "Warm-up before measuring.") var warmup = DurationArgument(.seconds(1), text: "1s")
    @Option(help: "unary: one call per request; stream: requests as messages on long-lived streams.") var mode: Mode = .unary
    @Option(help: "Call a running server at host:port.") var address: String?
    @Option(help: "Call a running service found through the registry.") var service: String?
    @Option(help: "The endpoint of --address/--service (raw bytes echoed).") var endpoint: String?
    @Option(help: "Event loops of the embedded server.") var serverThreads = 1
    @Option(help: "Event loops of the client.") var clientThreads = 1
    @Option(help: "Instead of calls: this many publishes through the embedded broker, to a subscriber of the same broker, then of a second one over loopback (--concurrency tasks).") var publishes: Int?

    enum Mode: String, ExpressibleByArgument, CaseIterable { case unary, stream }

    func validate() throws {
        for (name, value, limit) in [("--connections", connections, 100_000), ("--concurrency", concurrency, 1_000_000),
                                     ("--server-threads", serverThreads, 256), ("--client-threads", clientThreads, 256)] {
            if value <= 0 || value > limit { throw ValidationError("\(name) needs 1 to \(limit), not \(value)") }
        }
        if size < 0 || size > 16 << 20 { throw ValidationError("--size needs 0 to 16 MiB, not \(size)") }
        if let publishes, publishes <= 0 { throw ValidationError("--publishes needs a positive integer, not \(publishes)") }
        if address != nil && service != nil { throw ValidationError("--address and --service exclude each other") }
        if duration.seconds > 3600 || warmup.seconds > 600 { throw ValidationError("--duration at most 1 h, --warmup at most 10 min") }
    }

    func run() async throws {
        if let publishes {
            try await BrokerBench.run(publishes: publishes, tasks: concurrency, flags: flags)
            return
        }
        var options: ServiceOptions
        do { options = try flags.resolve(environment: ProcessInfo.processInfo.environment) } catch {
            throw CLIError(error.description, .usage)
        }
        options.transportThreads = clientThreads
        options.connectionsPerNode = connections
        options.broker = .none
        var clientConfiguration = ClientConfiguration()
        clientConfiguration.waitForNode = false
        let micro: MicroService
        do { micro = try MicroService(name: "micro-bench", options: options, client: clientConfiguration) } catch {
            throw CLIError(error.description, .usage)
        }
        let embedded = address == nil && service == nil ? try await EmbeddedEcho.start(options: options, threads: serverThreads) : nil
        let target = embedded.map { Target(service: "bench", endpoint: mode == .unary ? "Echo.Call" : "Echo.Stream", address: $0.address) }
            ?? Target(service: service ?? "", endpoint: endpoint ?? (mode == .unary ? "Echo.Call" : "Greeter.Stream"), address: address)
        let outcome: Result<Bool, any Error>
        do {
            if let service, target.address == nil { try await requireService(service, in: micro) }
            outcome = .success(try await load(micro.client, target: target, embedded: embedded != nil,
                                              clientLoops: micro.group.loops, serverLoops: embedded?.group.loops ?? []))
        } catch {
            outcome = .failure(error)
        }
        await micro.close()
        await embedded?.stop()
        if try !outcome.get() { throw CLIError("some calls failed (see the first error above)", .failed) }
    }

    struct Target {
        var service: String
        var endpoint: String
        var address: String?
    }

    func load(_ client: Client, target: Target, embedded: Bool, clientLoops: [EventLoop], serverLoops: [EventLoop]) async throws -> Bool {
        let where_ = target.address ?? "service \(target.service) (discovery)"
        say("micro bench: \(mode.rawValue) \(target.endpoint), \(body.map { "\($0.utf8.count) B of JSON" } ?? "\(size) B"), \(connections) connection(s) x \(concurrency) in flight, \(duration) (+\(warmup) warm-up), \(embedded ? "embedded server at " : "")\(where_)\(flags.tlsCA != nil || flags.tlsInsecure ? ", TLS" : "")")
        let payload = try body.map { try checkedBody($0, raw: false) } ?? [UInt8](repeating: 0x5A, count: size)
        let contentType = body == nil ? ContentType.raw : ContentType.json
        let echoed = body == nil
        let callOptions = CallOptions(timeout: .seconds(30), address: target.address, waitForNode: false)
        // The first call dials; a target that cannot answer fails here, with its error.
        if mode == .unary {
            do {
                _ = try await client.call(Request(service: target.service, endpoint: target.endpoint, contentType: contentType, body: payload), options: callOptions)
            } catch let error as RPCError {
                throw CLIError(error, service: target.service, endpoint: target.endpoint)
            }
        }
        let start = ContinuousClock.now
        let measureFrom = start + warmup.duration
        let stopAt = measureFrom + duration.duration
        let stats = BenchStats()
        // Each worker on a client loop (the address's, or in turn through discovery): a call never changes threads.
        let addressExecutor = target.address.flatMap { client.transport.preferredExecutor(for: $0) }
        let workers = (0..<concurrency).map { i in
            Task(executorPreference: addressExecutor ?? clientLoops[i % clientLoops.count]) { () -> Void in
                if mode == .unary {
                    let request = Request(service: target.service, endpoint: target.endpoint, contentType: contentType, body: payload)
                    while true {
                        let t0 = ContinuousClock.now
                        if t0 >= stopAt { break }
                        do {
                            let r = try await client.call(request, options: callOptions)
                            if echoed, r.body.count != payload.count { throw RPCError(.dataLoss, "echo of \(payload.count) B came back as \(r.body.count) B") }
                            if t0 >= measureFrom { stats.record(t0.duration(to: .now)) }
                        } catch {
                            if t0 >= measureFrom { stats.fail(error) }
                        }
                    }
                } else {
                    await streamLoop(client, target: target, payload: payload, options: callOptions, measureFrom: measureFrom, stopAt: stopAt, stats: stats)
                }
            }
        }
        // Progress once a second while the measured part runs.
        try? await Task.sleep(until: measureFrom)
        let cpuAtStart = (client: await LoopCPU.micros(clientLoops), server: await LoopCPU.micros(serverLoops), steal: LoopCPU.stealTicks())
        var last = stats.snapshot()
        var lastTime = ContinuousClock.now
        while ContinuousClock.now < stopAt {
            try? await Task.sleep(until: min(stopAt, lastTime + .seconds(1)))
            let now = ContinuousClock.now
            let snap = stats.snapshot()
            let rate = Double(snap.calls - last.calls) / max(1e-9, seconds(lastTime.duration(to: now)))
            let elapsed = seconds(measureFrom.duration(to: now))
            say(String(format: "  %5.1f s  %9.0f calls/s  %d errors  p50 %@  p99 %@", elapsed, rate, snap.errors,
                       snap.histogram.percentile(0.5).micros, snap.histogram.percentile(0.99).micros))
            last = snap
            lastTime = now
        }
        let cpuAtEnd = (client: await LoopCPU.micros(clientLoops), server: await LoopCPU.micros(serverLoops), steal: LoopCPU.stealTicks())
        for w in workers { await w.value }
        let final = stats.snapshot()
        let h = final.histogram
        say("")
        say("| calls | errors | calls/s | p50 | p90 | p99 | p99.9 | max |")
        say("|---|---|---|---|---|---|---|---|")
        say("| \(final.calls) | \(final.errors) | \(Int(Double(final.calls) / duration.seconds)) | \(h.percentile(0.5).micros) | \(h.percentile(0.9).micros) | \(h.percentile(0.99).micros) | \(h.percentile(0.999).micros) | \(h.maxMicros.micros) |")
        if final.calls > 0 {
            func per(_ a: Double, _ b: Double) -> String { String(format: "%.2f µs", (b - a) / Double(final.calls)) }
            var cpu = "CPU per call: client \(per(cpuAtStart.client, cpuAtEnd.client)) (its loop threads)"
            if embedded { cpu += ", server \(per(cpuAtStart.server, cpuAtEnd.server))" }
            say(cpu)
        }
        if let a = cpuAtStart.steal, let b = cpuAtEnd.steal {
            say(String(format: "steal: %.1f%% of the machine's CPU time (host contention; CPU figures are comparable near 0)",
                       LoopCPU.stealShare(ticks: b - a, seconds: duration.seconds)))
        }
        if let first = final.firstError { say("first error: \(first)") }
        return final.errors == 0 && final.calls > 0
    }

    /// One stream per worker: a message out, its echo back, again until the end.
    func streamLoop(_ client: Client, target: Target, payload: [UInt8], options: CallOptions, measureFrom: ContinuousClock.Instant,
                    stopAt: ContinuousClock.Instant, stats: BenchStats) async {
        var streamOptions = options
        streamOptions.timeout = stopAt - ContinuousClock.now + .seconds(30)
        let stream: ClientCallStream
        do {
            stream = try await client.stream(service: target.service, endpoint: target.endpoint, options: streamOptions)
        } catch {
            stats.fail(error)
            return
        }
        while true {
            let t0 = ContinuousClock.now
            if t0 >= stopAt { break }
            do {
                try await stream.send(payload)
                guard let echo = try await stream.receive() else { throw RPCError(.unavailable, "the server ended the stream") }
                if echo.count != payload.count { throw RPCError(.dataLoss, "echo of \(payload.count) B came back as \(echo.count) B") }
                if t0 >= measureFrom { stats.record(t0.duration(to: .now)) }
            } catch {
                stats.fail(error)
                stream.cancel()
                return
            }
        }
        try? await stream.closeSend()
        while (try? await stream.receive()) ?? nil != nil {}
    }
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

extension UInt64 {
    var micros: String { self == 0 ? "-" : "\(self) µs" }
}

/// Calls, errors and a latency histogram, shared by the workers and the progress line. Guarded by its mutex
/// (uncontended but for the progress line once a second).
final class BenchStats: Sendable {
    struct Snapshot {
        var calls = 0
        var errors = 0
        var firstError: String?
        var histogram = LatencyHistogram()
    }
    private let state = Mutex(Snapshot())

    func record(_ latency: Duration) {
        let micros = UInt64(max(0, latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000))
        state.withLock {
            $0.calls += 1
            $0.histogram.record(micros)
        }
    }

    func fail(_ error: any Error) {
        state.withLock {
            $0.errors += 1
            if $0.firstError == nil { $0.firstError = "\(error)" }
        }
    }

    func snapshot() -> Snapshot { state.withLock { $0 } }
}

/// Microsecond latencies in log-linear buckets: exact below 64 µs, then 32 buckets per power of two (3% wide).
struct LatencyHistogram {
    private var counts = [UInt64](repeating: 0, count: 64 + 58 * 32)
    private(set) var total: UInt64 = 0
    private(set) var maxMicros: UInt64 = 0

    static func index(_ v: UInt64) -> Int {
        if v < 64 { return Int(v) }
        let e = 63 - v.leadingZeroBitCount  // >= 6
        let sub = Int((v >> (e - 5)) & 31)
        return 64 + (e - 6) * 32 + sub
    }

    static func lowerBound(_ i: Int) -> UInt64 {
        if i < 64 { return UInt64(i) }
        let e = (i - 64) / 32 + 6
        let sub = UInt64((i - 64) % 32)
        return (UInt64(1) << e) | (sub << (e - 5))
    }

    mutating func record(_ micros: UInt64) {
        counts[Self.index(micros)] += 1
        total += 1
        if micros > maxMicros { maxMicros = micros }
    }

    /// The smallest recorded bucket's bound below which `p` of the values lie; 0 when empty.
    func percentile(_ p: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        let rank = UInt64((Double(total) * p).rounded(.up))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= max(1, rank) { return max(Self.lowerBound(i), 1) }
        }
        return maxMicros
    }
}

/// The echo server of `micro bench` without a target: its own loops, plain or TLS.
struct EmbeddedEcho {
    let group: EventLoopGroup
    let server: Server
    let address: String

    static func start(options: ServiceOptions, threads: Int) async throws -> EmbeddedEcho {
        var configuration = UVTransportConfiguration()
        configuration.settings.maxConcurrentStreams = 1 << 16
        if let files = options.tls, let cert = files.certificate, let key = files.key {
            var tls = TLSConfiguration()
            tls.certificateChain = .file(cert)
            tls.privateKey = .file(key)
            do { configuration.tls = try TLSContext(role: .server, configuration: tls) } catch {
                throw CLIError("TLS: \(error)", .usage)
            }
        }
        let group = EventLoopGroup(threads: threads)
        let transport = UVServerTransport(group: group, address: try SocketAddress(host: "127.0.0.1", port: 0), configuration: configuration)
        let server = Server(configuration: ServerConfiguration(name: "bench"), transport: transport)
        server.handle("Echo.Call") { request, _ in Response(body: request.body) }
        server.handleStream("Echo.Stream") { stream in
            while let message = try await stream.receive() { try await stream.send(message) }
        }
        try await server.start()
        guard let bound = transport.localAddress else { throw CLIError("the embedded server did not bind", .unavailable) }
        return EmbeddedEcho(group: group, server: server, address: bound.description)
    }

    func stop() async {
        await server.shutdown(gracePeriod: .seconds(1))
        await group.shutdown()
    }
}

/// Publishes per second through the embedded broker: to a subscriber of the publishing broker, then to one of a
/// second broker (its own listener, over loopback TCP).
enum BrokerBench {
    static func run(publishes n: Int, tasks: Int, flags: ServiceFlags) async throws {
        let options: ServiceOptions
        do { options = try flags.resolve(environment: ProcessInfo.processInfo.environment) } catch {
            throw CLIError(error.description, .usage)
        }
        let registry: any Registry
        do { registry = try options.registry.makeRegistry() } catch { throw CLIError("registry: \(error)", .usage) }
        let group = EventLoopGroup(threads: 1)
        let broker = EmbeddedBroker(group: group, registry: registry)
        let other = EmbeddedBroker(group: group, registry: registry)
        let prefix = "bench-\(ProcessInfo.processInfo.processIdentifier)-"
        var failure: (any Error)?
        for (name, subscriber) in [("same broker", broker), ("second broker over loopback", other)] where failure == nil {
            let topic = prefix + (subscriber === broker ? "same" : "other")
            do {
                let subscription = try await subscriber.subscribe(topic) { _ in }
                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { g in
                    for t in 0..<min(tasks, n) {
                        g.addTask {
                            for _ in stride(from: t, to: n, by: min(tasks, n)) {
                                let r = try await broker.publish(topic, BrokerMessage(body: Array("payload".utf8)))
                                if r.delivered != 1 { throw CLIError("a message reached nobody", .unavailable) }
                            }
                        }
                    }
                    try await g.waitForAll()
                }
                let elapsed = seconds(start.duration(to: .now))
                say("\(name): \(n) publishes from \(min(tasks, n)) task(s) in \(String(format: "%.3f", elapsed)) s: \(Int(Double(n) / elapsed))/s")
                await subscription.unsubscribe()
            } catch {
                failure = error
            }
        }
        await other.close()
        await broker.close()
        await group.shutdown()
        if let failure { throw failure as? CLIError ?? CLIError("publish: \(failure)", .failed) }
    }
}

/// CPU time of event-loop threads and the host's steal time, for the figures a noisy machine cannot fake.
enum LoopCPU {
    /// The summed CPU time of `loops`' threads, in microseconds.
    static func micros(_ loops: [EventLoop]) async -> Double {
        var total = 0.0
        for loop in loops {
            total += (try? await loop.submit { () -> Double in
                var ts = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
            }) ?? 0
        }
        return total
    }

    /// Clock ticks the hypervisor gave other guests so far (/proc/stat), nil where there is none.
    static func stealTicks() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = text.split(separator: "\n").first else { return nil }
        let fields = line.split(separator: " ")
        guard fields.first == "cpu", fields.count > 8 else { return nil }
        return UInt64(fields[8])
    }

    /// `ticks` of steal over `seconds` as a share of all CPUs' time, in percent.
    static func stealShare(ticks: UInt64, seconds: Double) -> Double {
        Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) / (seconds * Double(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))) * 100
    }
}
