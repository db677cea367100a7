// micro-bench: a bounded load run of unary echo calls over the multiplexed protocol, against an embedded server
// on loopback. Prints calls/s, latency percentiles and the server loop's CPU per call.
//
// usage: micro-bench [--connections 1] [--concurrency 64] [--size 64] [--duration 5] [--warmup 1]
//                    [--server-threads 1] [--client-threads 1]
import Glibc
import MicroEventLoop
import MicroFraming
import MicroTLS
import MicroTransport
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
        case "-h", "--help":
            say("usage: micro-bench [--connections 1] [--concurrency 64] [--size 64] [--duration 5] [--warmup 1] [--server-threads 1] [--client-threads 1]")
            say("       micro-bench --tls-handshakes N     (full and resumed TLS handshakes per second)")
            exit(0)
        default: fail("micro-bench: unknown argument \(a)")
        }
    }
    if o.concurrency < o.connections { o.concurrency = o.connections }
    return o
}

/// CPU time of the calling thread, in microseconds.
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

final class Recorder: Sendable {
    struct State: ~Copyable {
        var samples: [UInt32] = []  // microseconds
        var calls = 0
        var errors = 0
        var firstError: String?
    }
    let state = Mutex(State())
    func merge(_ samples: [UInt32], calls: Int, errors: Int, firstError: String?) {
        state.withLock {
            $0.samples += samples
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
let serverGroup = EventLoopGroup(threads: options.serverThreads)
let clientGroup = EventLoopGroup(threads: options.clientThreads)
var serverConfig = UVTransportConfiguration()
serverConfig.settings.maxConcurrentStreams = UInt32(max(4096, options.concurrency))
let server = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0), configuration: serverConfig)
/// Echo: the request's message back, in one RESPONSE frame, on the transport's unary path.
final class Echo: UnaryHandler, ServerHandler {
    nonisolated(nonsending) func handle(_ request: UnaryRequest) async -> UnaryReply { UnaryReply(message: request.message) }
    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { self }
    func handleStream(_ stream: ServerStream) async { await serveAsStream(stream) }
}
try await server.serve(Echo())
guard let bound = server.localAddress else { fail("server did not bind") }
let address = bound.description

var clientConfig = UVTransportConfiguration()
clientConfig.maxConnectionsPerAddress = options.connections
clientConfig.maxStreamsPerConnection = (options.concurrency + options.connections - 1) / options.connections
let client = UVClientTransport(group: clientGroup, configuration: clientConfig)
let clientLoop = try client.loop(for: address)

say("micro-bench: unary echo, \(options.size) B, \(options.connections) connection(s) x \(options.concurrency) in flight, \(options.duration) s (+\(options.warmup) s warm-up), server \(options.serverThreads) loop(s), client \(options.clientThreads) loop(s), \(address)")

let payload = [UInt8](repeating: 0x5A, count: options.size)
let head = RequestHead(service: "bench", endpoint: "echo")
let recorder = Recorder()
let clock = ContinuousClock()
let start = clock.now
let measureFrom = start + .milliseconds(Int(options.warmup * 1000))
let stopAt = measureFrom + .milliseconds(Int(options.duration * 1000))
let measuring = Atomic<Bool>(false)

// Open the connections first so that the run measures calls, not dials.
do {
    _ = try await client.unary(to: address, head: head, message: payload)
} catch {
    fail("first call failed: \(error)")
}

var cpuAtStart = 0.0
let workers = (0..<options.concurrency).map { _ in
    Task(executorPreference: clientLoop) {
        var samples: [UInt32] = []
        samples.reserveCapacity(1 << 16)
        var calls = 0
        var errors = 0
        var firstError: String?
        while true {
            let t0 = clock.now
            if t0 >= stopAt { break }
            do {
                let r = try await client.unary(to: address, head: head, message: payload)
                guard r.status == .ok, r.message?.count == payload.count else { throw TransportError(.protocolError, "bad echo \(r.status)") }
                if t0 >= measureFrom {
                    let d = clock.now - t0
                    samples.append(UInt32(min(Int64(UInt32.max), d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000)))
                    calls += 1
                }
            } catch {
                if t0 >= measureFrom { errors += 1 }
                if firstError == nil { firstError = "\(error)" }
            }
        }
        recorder.merge(samples, calls: calls, errors: errors, firstError: firstError)
    }
}
try await Task.sleep(until: measureFrom)
cpuAtStart = await serverCPU(serverGroup)
try await Task.sleep(until: stopAt)
let cpuAtEnd = await serverCPU(serverGroup)
for w in workers { await w.value }

let result = recorder.state.withLock { s in (s.samples.sorted(), s.calls, s.errors, s.firstError) }
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
if let firstError { say("first error: \(firstError)") }

await client.shutdown()
await server.drain(gracePeriod: .seconds(1))
let clean = serverGroup.shutdownGracefully() && clientGroup.shutdownGracefully()
if !clean { say("warning: an event loop did not close clean") }
exit(errors == 0 && calls > 0 ? 0 : 1)
