// micro-bench: a bounded load run of unary echo calls of raw bytes against an embedded server on loopback,
// through the RPC layer (MicroRPC's Client and Server; `--layer transport` for the bare transport). Prints
// calls/s, latency percentiles, the server loop's CPU per call and, when run with the malloc counter preloaded
// (scripts/bench does), allocations per call on the client's and the server's loop threads.
//
// usage: micro-bench [--connections 1] [--concurrency 64] [--size 64] [--duration 5] [--warmup 1]
//                    [--server-threads 1] [--client-threads 1] [--layer rpc|transport]
import CLibUV
import Glibc
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroRPC
import MicroMiddleware
import Prometheus
import MicroTLS
import MicroUVTransport
import Synchronization

struct Options {
    var connections = 1
    var concurrency = 64
    var size = 64
    var duration = 5.0
    var warmup = 1.0
    var serverThreads = 1
    var clientThreads = 1
    var tlsHandshakes = 0
    var rpc = true
    var pin = false
    /// The middleware chain on both sides: none, empty (a chain of pass-through middleware) or stock.
    var middleware = "none"
    var hedging = false
    var chainCost = false
}

func fail(_ message: String) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func say(_ s: String) {
    let line = s + "\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}

func parse() -> Options {
    var o = Options()
    var it = CommandLine.arguments.dropFirst().makeIterator()
    func int(_ name: String) -> Int { guard let v = it.next().flatMap({ Int($0) }), v > 0 else { fail("\(name) needs a positive integer") }; return v }
    func double(_ name: String) -> Double { guard let v = it.next().flatMap({ Double($0) }), v >= 0, v <= 600 else { fail("\(name) needs seconds (0-600)") }; return v }
    while let a = it.next() {
        switch a {
        case "--connections": o.connections = int(a)
        case "--concurrency": o.concurrency = int(a)
        case "--size": o.size = int(a)
        case "--duration": o.duration = double(a)
        case "--warmup": o.warmup = double(a)
        case "--server-threads": o.serverThreads = int(a)
        case "--client-threads": o.clientThreads = int(a)
        case "--tls-handshakes": o.tlsHandshakes = int(a)
        case "--layer":
            switch it.next() {
            case "rpc": o.rpc = true
            case "transport": o.rpc = false
            default: fail("--layer needs rpc or transport")
            }
        case "--pin": o.pin = true
        case "--middleware":
            guard let m = it.next(), ["none", "empty", "stock", "limit", "metrics"].contains(m) else {
                fail("--middleware needs none, empty, stock, limit or metrics")
            }
            o.middleware = m
        case "--hedging": o.hedging = true
        case "--chain-cost": o.chainCost = true
        case "-h", "--help":
            say("usage: micro-bench [--connections 1] [--concurrency 64] [--size 64] [--duration 5] [--warmup 1] [--server-threads 1] [--client-threads 1] [--layer rpc|transport] [--pin]")
            say("       --pin: client loops on CPU 0, server loops on CPU 1 (steadier figures on a 2-core machine)")
            say("       --middleware none|empty|stock: the chain on both sides (stock: server rate limit + metrics; client breaker + rate limit + metrics, Prometheus backend)")
            say("       micro-bench --chain-cost   (CPU per call of middleware chains, server and client paths without the network)")
            say("       micro-bench --tls-handshakes N     (full and resumed TLS handshakes per second)")
            say("       micro-bench --hedging [--duration 5] [--concurrency 16]   (p99 with one of three nodes 50 ms late for 10% of calls, with and without hedging)")
            exit(0)
        default: fail("micro-bench: unknown argument \(a)")
        }
    }
    if o.concurrency < o.connections { o.concurrency = o.connections }
    return o
}

/// CPU time of the calling thread, in microseconds.
/// The machine's steal time so far (clock ticks), from /proc/stat; nil where there is none.
func stealTicks() -> UInt64? {
    guard let f = fopen("/proc/stat", "r") else { return nil }
    defer { fclose(f) }
    var line = [CChar](repeating: 0, count: 512)
    guard fgets(&line, Int32(line.count), f) != nil else { return nil }
    let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
    // cpu user nice system idle iowait irq softirq steal
    guard fields.first == "cpu", fields.count > 8 else { return nil }
    return UInt64(fields[8].filter(\.isNumber))
}

func threadCPUMicros() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}

func serverCPU(_ group: EventLoopGroup) async -> Double {
    var total = 0.0
    for loop in group.loops { total += (try? await loop.submit { threadCPUMicros() }) ?? 0 }
    return total
}

/// The preloaded malloc counter's per-thread count (Benchmarks/malloc-counter), when it is loaded.
typealias MallocCount = @convention(c) () -> UInt64
let mallocCount: MallocCount? = dlsym(dlopen(nil, RTLD_NOW), "micro_malloc_count").map { unsafeBitCast($0, to: MallocCount.self) }

/// Allocations made so far on the loop threads of `group`.
func loopMallocs(_ group: EventLoopGroup) async -> UInt64? {
    guard let count = mallocCount else { return nil }
    var total: UInt64 = 0
    for loop in group.loops { total += (try? await loop.submit { count() }) ?? 0 }
    return total
}

final class Recorder: Sendable {
    struct State: ~Copyable {
        var calls = 0
        var errors = 0
        var firstError: String?
    }
    let state = Mutex(State())
    func merge(calls: Int, errors: Int, firstError: String?) {
        state.withLock {
            $0.calls += calls
            $0.errors += errors
            if $0.firstError == nil { $0.firstError = firstError }
        }
    }
}

let options = parse()
if options.tlsHandshakes > 0 {
    try await HandshakeBench.run(count: options.tlsHandshakes)
    exit(0)
}
if options.chainCost {
    try await ChainCost.run()
    exit(0)
}
if options.hedging {
    exit(try await HedgingBench.run(duration: options.duration, concurrency: options.concurrency == 64 ? 16 : options.concurrency) ? 0 : 1)
}
let serverGroup = EventLoopGroup(threads: options.serverThreads)
let clientGroup = EventLoopGroup(threads: options.clientThreads)
if options.pin {
    func pin(_ group: EventLoopGroup, cpu: Int) async {
        for loop in group.loops {
            _ = try? await loop.submit {
                micro_pin_current_thread(Int32(cpu))
            }
        }
    }
    await pin(clientGroup, cpu: 0)
    await pin(serverGroup, cpu: 1 % max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}
var serverConfig = UVTransportConfiguration()
serverConfig.settings.maxConcurrentStreams = UInt32(max(4096, options.concurrency))
let server = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0), configuration: serverConfig)
/// Echo: the request's message back, in one RESPONSE frame, on the transport's unary path.
final class Echo: UnaryHandler, ServerHandler {
    nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply { UnaryReply(message: request.message) }
    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { self }
    func handleStream(_ stream: ServerStream) async { await serveAsStream(stream) }
}
let metricsFactory = PrometheusMetricsFactory()
var rpcServerConfig = ServerConfiguration(name: "bench")
switch options.middleware {
case "empty":
    rpcServerConfig.use {}
case "stock":
    rpcServerConfig.use {
        ServerRateLimitMiddleware(ServerRateLimitMiddleware.Configuration(endpoint: Rate(perSecond: 1e9, burst: 1_000_000)))
        MetricsMiddleware(factory: metricsFactory)
    }
case "limit":
    rpcServerConfig.use { ServerRateLimitMiddleware(ServerRateLimitMiddleware.Configuration(endpoint: Rate(perSecond: 1e9, burst: 1_000_000))) }
case "metrics":
    rpcServerConfig.use { MetricsMiddleware(factory: metricsFactory) }
default:
    break
}
let rpcServer = Server(configuration: rpcServerConfig, transport: server)
if options.rpc {
    rpcServer.handle("echo") { request, _ in Response(body: request.body) }
    try await rpcServer.start()
} else {
    try await server.serve(Echo())
}
guard let bound = server.localAddress else { fail("server did not bind") }
let address = bound.description

var clientConfig = UVTransportConfiguration()
clientConfig.maxConnectionsPerAddress = options.connections
clientConfig.maxStreamsPerConnection = (options.concurrency + options.connections - 1) / options.connections
let client = UVClientTransport(group: clientGroup, configuration: clientConfig)
let clientLoop = try client.loop(for: address)
var rpcClientConfig = ClientConfiguration()
switch options.middleware {
case "empty":
    rpcClientConfig.use {}
case "stock":
    rpcClientConfig.use {
        CircuitBreakerMiddleware()
        ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000))
        MetricsMiddleware(factory: metricsFactory)
    }
case "limit":
    rpcClientConfig.use { ClientRateLimitMiddleware(rate: Rate(perSecond: 1e9, burst: 1_000_000)) }
case "metrics":
    rpcClientConfig.use { MetricsMiddleware(factory: metricsFactory) }
default:
    break
}
let rpcClient = Client(transport: client, configuration: rpcClientConfig)
let callOptions = CallOptions(address: address)

say("micro-bench: \(options.rpc ? "RPC" : "transport")\(options.middleware == "none" ? "" : " (middleware: \(options.middleware))") unary echo of raw bytes, \(options.size) B, \(options.connections) connection(s) x \(options.concurrency) in flight, \(options.duration) s (+\(options.warmup) s warm-up), server \(options.serverThreads) loop(s), client \(options.clientThreads) loop(s), \(address)")

let payload = [UInt8](repeating: 0x5A, count: options.size)
let head = RequestHead(service: "bench", endpoint: "echo")
let request = Request(service: "bench", endpoint: "echo", body: payload)
let rpc = options.rpc

/// One echo call through the layer under test; returns the echoed byte count.
@Sendable nonisolated(nonsending) func echo() async throws -> Int {
    if rpc {
        return try await rpcClient.call(request, options: callOptions).body.count
    }
    let r = try await client.unary(to: address, head: head, message: payload)
    guard r.status == .ok else { throw TransportError(.protocolError, "bad echo \(r.status)") }
    return r.message?.count ?? -1
}
let recorder = Recorder()
// Timestamps (plain nanoseconds): the harness's own clock reads and arithmetic stay out of the client's cost.
let start = Timestamp.now
let measureFrom = start.advanced(by: .milliseconds(Int(options.warmup * 1000)))
let stopAt = measureFrom.advanced(by: .milliseconds(Int(options.duration * 1000)))
/// Calls completed, for the allocation counts (read next to them).
let completedCalls = Atomic<Int>(0)

// Open the connections first so that the run measures calls, not dials.
do {
    _ = try await echo()
} catch {
    fail("first call failed: \(error)")
}

/// Latency samples of every worker, in one buffer: the workers all run on the client loop (their executor
/// preference; a call never leaves it), so they append in turn. One buffer, not one per worker: a thousand
/// workers' buffers would cost the client loop cache misses and page faults that are the harness's, not the
/// client's. Loop-confined (checked).
final class LoopSamples: @unchecked Sendable {
    let loop: EventLoop
    private var values: [UInt32] = []
    init(loop: EventLoop) {
        self.loop = loop
        values.reserveCapacity(1 << 20)
    }
    func append(_ v: UInt32) {
        precondition(loop.inEventLoop)
        values.append(v)
    }
    /// After the workers ended.
    var all: [UInt32] { values }
}
let loopSamples = LoopSamples(loop: clientLoop)

var cpuAtStart = 0.0
let workers = (0..<options.concurrency).map { _ in
    Task(executorPreference: clientLoop) {
        var calls = 0
        var errors = 0
        var firstError: String?
        while true {
            let t0 = Timestamp.now
            if t0 >= stopAt { break }
            do {
                guard try await echo() == payload.count else { throw TransportError(.protocolError, "bad echo") }
                completedCalls.add(1, ordering: .relaxed)
                if t0 >= measureFrom {
                    loopSamples.append(UInt32(clamping: t0.nanoseconds(to: .now) / 1000))
                    calls += 1
                }
            } catch {
                if t0 >= measureFrom { errors += 1 }
                if firstError == nil { firstError = "\(error)" }
            }
        }
        recorder.merge(calls: calls, errors: errors, firstError: firstError)
    }
}
try await Task.sleep(until: measureFrom.instant)
let stealAtStart = stealTicks()
cpuAtStart = await serverCPU(serverGroup)
let clientCPUAtStart = await serverCPU(clientGroup)
let serverMallocsAtStart = await loopMallocs(serverGroup)
let clientMallocsAtStart = await loopMallocs(clientGroup)
let callsAtStart = completedCalls.load(ordering: .relaxed)
try await Task.sleep(until: stopAt.instant)
let cpuAtEnd = await serverCPU(serverGroup)
let stealAtEnd = stealTicks()
let clientCPUAtEnd = await serverCPU(clientGroup)
let serverMallocsAtEnd = await loopMallocs(serverGroup)
let clientMallocsAtEnd = await loopMallocs(clientGroup)
let callsAtEnd = completedCalls.load(ordering: .relaxed)
for w in workers { await w.value }

let result = recorder.state.withLock { s in (loopSamples.all.sorted(), s.calls, s.errors, s.firstError) }
let (sorted, calls, errors, firstError) = result
func pct(_ p: Double) -> String {
    guard !sorted.isEmpty else { return "-" }
    let i = min(sorted.count - 1, Int(Double(sorted.count) * p))
    return "\(sorted[i]) µs"
}
let rate = Double(calls) / options.duration
let cpuPerCall = calls > 0 ? (cpuAtEnd - cpuAtStart) / Double(calls) : 0
say("calls: \(calls) ok, \(errors) errors in \(options.duration) s")
say("throughput: \(Int(rate)) calls/s")
say("latency: p50 \(pct(0.50))  p90 \(pct(0.90))  p99 \(pct(0.99))  p99.9 \(pct(0.999))  max \(sorted.last.map { "\($0) µs" } ?? "-")")
say("server CPU per call: \(Double(Int(cpuPerCall * 100)) / 100) µs (server loop threads)")
if calls > 0 {
    say("client CPU per call: \(Double(Int((clientCPUAtEnd - clientCPUAtStart) / Double(calls) * 100)) / 100) µs (client loop threads)")
}
if let s0 = serverMallocsAtStart, let s1 = serverMallocsAtEnd, let c0 = clientMallocsAtStart, let c1 = clientMallocsAtEnd, callsAtEnd > callsAtStart {
    let n = Double(callsAtEnd - callsAtStart)
    func per(_ a: UInt64, _ b: UInt64) -> String { "\(Double(Int((Double(b - a) / n) * 100)) / 100)" }
    say("allocations per call: server \(per(s0, s1)), client \(per(c0, c1)) (loop threads)")
}
if let a = stealAtStart, let b = stealAtEnd {
    // Time the hypervisor ran something else on our CPUs: a loaded host inflates every CPU figure above.
    let share = Double(b - a) / Double(sysconf(Int32(_SC_CLK_TCK))) / (options.duration * Double(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
    say("steal: \(Double(Int(share * 1000)) / 10)% of the machine's CPU time (host contention; figures are trustworthy near 0)")
}
if let firstError { say("first error: \(firstError)") }

await client.shutdown()
if options.rpc { await rpcServer.shutdown(gracePeriod: .seconds(1)) } else { await server.drain(gracePeriod: .seconds(1)) }
let clean = serverGroup.shutdownGracefully() && clientGroup.shutdownGracefully()
if !clean { say("warning: an event loop did not close clean") }
exit(errors == 0 && calls > 0 ? 0 : 1)
