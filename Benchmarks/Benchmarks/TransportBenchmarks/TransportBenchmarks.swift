import Benchmark
import MicroEventLoop
import MicroCore
import MicroFraming
import MicroUVTransport

/// Allocations and time per operation on the hot paths: decoding frames, and a unary call over loopback
/// (client and server in one process, so the malloc count is both sides together).
let benchmarks: @Sendable () -> Void = {
    // Thresholds as in RPCBenchmarks: +0.1 allocation per operation, +60% wall time at p90 (CPU time has 10 ms
    // resolution in package-benchmark: not a metric here).
    Benchmark.defaultConfiguration = .init(metrics: [.mallocCountTotal, .wallClock], maxDuration: .seconds(3),
                                           thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100]),
                                                        .wallClock: .init(relative: [.p90: 60.0])])

    // 64 frames of 64 B in one read, decoded in place: no allocation per frame.
    let frames: [UInt8] = {
        var out: [UInt8] = []
        let payload = [UInt8](repeating: 1, count: 64)
        for i in 0..<64 {
            var f = [UInt8](repeating: 0, count: FrameEncoder.dataSize(messageCount: 64))
            _ = f.withUnsafeMutableBytes { p in payload.withUnsafeBytes { FrameEncoder.encodeData(stream: UInt32(i + 1), message: $0, endStream: false, into: p.baseAddress!) } }
            out += f
        }
        return out
    }()
    Benchmark("decode_64_frames_of_64B_per_read", configuration: .init(scalingFactor: .kilo)) { benchmark in
        var acc = FrameAccumulator(maxPayload: 1 << 20)
        var count = 0
        for _ in benchmark.scaledIterations {
            frames.withUnsafeBytes { b in
                try? acc.feed(b) { f in
                    if case .data(_, let m, _)? = try? Frame.decode(f) { count &+= m.count }
                    return true
                }
            }
        }
        blackHole(count)
    }

    Benchmark("unary_echo_over_loopback_16B_both_sides", configuration: .init(scalingFactor: .kilo)) { benchmark in
        let serverGroup = EventLoopGroup(threads: 1)
        let clientGroup = EventLoopGroup(threads: 1)
        let server = UVServerTransport(group: serverGroup, address: try SocketAddress(host: "127.0.0.1", port: 0))
        try await server.serve(EchoHandler())
        let address = server.localAddress!.description
        let client = UVClientTransport(group: clientGroup)
        let head = RequestHead(service: "bench", endpoint: "echo")
        let message = [UInt8](repeating: 7, count: 16)
        _ = try await client.unary(to: address, head: head, message: message)
        let loop = try client.loop(for: address)
        let iterations = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        try await Task(executorPreference: loop) {
            for _ in 0..<iterations {
                blackHole(try await client.unary(to: address, head: head, message: message))
            }
        }.value
        benchmark.stopMeasurement()
        await client.shutdown()
        await server.drain(gracePeriod: .milliseconds(100))
        serverGroup.shutdownGracefully()
        clientGroup.shutdownGracefully()
    }
}

/// Echoes on the transport's unary path (no stream object, no task per call).
final class EchoHandler: UnaryHandler, ServerHandler {
    nonisolated(nonsending) func handle(_ request: UnaryRequest) async -> UnaryReply { UnaryReply(message: request.message) }
    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { self }
    func handleStream(_ stream: ServerStream) async { await serveAsStream(stream) }
}
