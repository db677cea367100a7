import Foundation
import Glibc
import MicroCore
import MicroEventLoop
import MicroRPC
import Synchronization

/// One bounded load run: `concurrency` workers, each on a client loop (so a call never changes threads), call
/// until the end; latencies after the warm-up go to a buffer per loop (loop-confined: no lock, no atomic per
/// call), completed calls to one relaxed atomic. A progress line a second reads the atomics and, on each loop,
/// every 8th latency of that second. The report: calls/s, percentiles, CPU per call of the client's and the
/// server's loop threads, allocations per call (when the malloc counter is preloaded), the host's steal time.
///
/// Closed loop by default: each worker calls again as soon as its answer comes, so `concurrency` calls are always in
/// flight and the rate is whatever the system gives. With `rate` (calls per second in all), open loop: each worker
/// calls on a schedule of its own (`concurrency / rate` apart, the workers' schedules staggered, rounded up to a
/// 200 µs tick), waiting on a loop alarm (no thread hop), and a call's latency counts from its scheduled time, so a
/// stall that delays the calls behind it shows in their latency (no coordinated omission). A worker that falls
/// behind calls at once; calls still due when the window ends are not made, and reported.
final class LoadRun: Sendable {
    let payload: [UInt8]
    let echoed: Bool
    let concurrency: Int
    let warmup: Duration
    let duration: Duration
    let progress: Bool
    let json: Bool
    /// Calls per second in all (open loop); nil: closed loop.
    let rate: Double?
    let workerLoop: @Sendable (Int) -> EventLoop
    let clientLoops: [EventLoop]
    let serverLoops: [EventLoop]
    /// A server in another process whose CPU time (all its threads, from /proc) is reported per call.
    let serverProcess: Int32?
    /// One buffer per client loop, by loop index.
    private let samples: [ObjectIdentifier: LoopSamples]
    private let completed = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    /// Open loop: scheduled calls of the measured window not made because the window ended first.
    private let skipped = Atomic<Int>(0)
    private let firstError = Mutex<String?>(nil)

    init(payload: [UInt8], echoed: Bool, concurrency: Int, warmup: Duration, duration: Duration, progress: Bool, json: Bool,
         rate: Double? = nil, workerLoop: @escaping @Sendable (Int) -> EventLoop, clientLoops: [EventLoop], serverLoops: [EventLoop], serverProcess: Int32?) {
        self.payload = payload
        self.echoed = echoed
        self.concurrency = concurrency
        self.warmup = warmup
        self.duration = duration
        self.progress = progress
        self.json = json
        self.rate = rate
        self.workerLoop = workerLoop
        self.clientLoops = clientLoops
        self.serverLoops = serverLoops
        self.serverProcess = serverProcess
        var samples: [ObjectIdentifier: LoopSamples] = [:]
        for loop in clientLoops { samples[ObjectIdentifier(loop)] = LoopSamples(loop: loop) }
        self.samples = samples
    }

    private func fail(_ error: any Error) {
        failed.add(1, ordering: .relaxed)
        firstError.withLock { if $0 == nil { $0 = "\(error)" } }
    }

    /// Unary calls made by `call`, which returns the answer's byte count. Generic, so that each worker's call is a
    /// direct call of the specialized `call` (a closure cost each call a thunk's frame and an executor check: load
    /// generator work counted as the client's).
    func unary<Call: UnaryLoadCall>(_ call: Call) async throws -> Bool {
        let start = Timestamp.now
        let measureFrom = start.advanced(by: warmup)
        let stopAt = measureFrom.advanced(by: duration)
        let expected = echoed ? payload.count : -1
        // Open loop: each worker's calls `interval` apart, the workers' first calls spread over one interval.
        let interval = rate.map { max(1, Int64((Double(concurrency) / $0 * 1e9).rounded())) }
        let workers = (0..<concurrency).map { i in
            let loop = workerLoop(i)
            let buffer = samples[ObjectIdentifier(loop)]!
            let concurrency = self.concurrency
            return Task(executorPreference: loop) {
                var scheduled = interval.map { start.advanced(byNanoseconds: $0 / Int64(concurrency) * Int64(i)) }
                while true {
                    // Open loop: the call is due at its scheduled time rounded up to the pacing tick, so that
                    // the calls of one tick go out together (one wake-up per tick, not per call); its latency
                    // counts from then (a late call's wait is part of it). A call belongs to the window it is sent
                    // in, as in the closed loop.
                    var due: Timestamp?
                    if let s = scheduled {
                        let d = Timestamp(nanoseconds: (s.nanoseconds + Self.pacingTick - 1) / Self.pacingTick * Self.pacingTick)
                        if d >= stopAt { break }
                        if Timestamp.now < d { await Self.wait(until: d, on: loop) }
                        scheduled = s.advanced(byNanoseconds: interval!)
                        due = d
                    }
                    let sentAt = Timestamp.now
                    if sentAt >= stopAt {
                        // Behind schedule at the end: the calls still due in the window are not made (a backlog
                        // drained after the end would be calls the window did not carry); they are reported.
                        if let due {
                            self.skipped.add(Self.scheduledCount(from: due.nanoseconds, every: interval!, in: measureFrom.nanoseconds,
                                                                 stopAt.nanoseconds), ordering: .relaxed)
                        }
                        break
                    }
                    let measured = sentAt >= measureFrom
                    let t0 = due ?? sentAt
                    do {
                        let n = try await call.once()
                        if expected >= 0 && n != expected { throw RPCError(.dataLoss, "echo of \(expected) B came back as \(n) B") }
                        self.completed.add(1, ordering: .relaxed)
                        if measured { buffer.append(UInt32(clamping: t0.nanoseconds(to: .now) / 1000)) }
                    } catch {
                        if measured { self.fail(error) }
                    }
                }
            }
        }
        return await report(workers: workers, measureFrom: measureFrom, stopAt: stopAt)
    }

    /// How many of the times `first`, `first + every`, ... fall in `[low, high)`.
    static func scheduledCount(from first: Int64, every interval: Int64, in low: Int64, _ high: Int64) -> Int {
        var start = first
        if start < low { start += (low - start + interval - 1) / interval * interval }
        guard start < high else { return 0 }
        return Int(1 + (high - 1 - start) / interval)
    }

    /// The open loop's pacing granularity: 200 µs, at most 5,000 wake-ups a second for the schedule.
    static let pacingTick: Int64 = 200_000

    /// Suspends until `due`: on a loop alarm when the task runs on `loop` (resumed there, no thread hop), else a sleep.
    private static func wait(until due: Timestamp, on loop: EventLoop) async {
        guard loop.inEventLoop else {
            try? await Task.sleep(until: due.instant)
            return
        }
        await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
            _ = loop.scheduleAlarm(atBoottimeNanoseconds: due.nanoseconds) { c.resume() }
        }
    }

    /// One stream per worker: a message out, its echo back, again until the end.
    func streams(_ client: Client, service: String, endpoint: String, contentType: String, options: CallOptions) async throws -> Bool {
        let start = Timestamp.now
        let measureFrom = start.advanced(by: warmup)
        let stopAt = measureFrom.advanced(by: duration)
        var longer = options
        longer.timeout = warmup + duration + .seconds(30)
        let streamOptions = longer
        let payload = self.payload
        let echoed = self.echoed
        let workers = (0..<concurrency).map { i in
            let loop = workerLoop(i)
            let buffer = samples[ObjectIdentifier(loop)]!
            return Task(executorPreference: loop) {
                let stream: ClientCallStream
                do {
                    stream = try await client.stream(service: service, endpoint: endpoint, contentType: contentType, options: streamOptions)
                } catch {
                    self.fail(error)
                    return
                }
                while true {
                    let t0 = Timestamp.now
                    if t0 >= stopAt { break }
                    do {
                        try await stream.send(payload)
                        guard let echo = try await stream.receive() else { throw RPCError(.unavailable, "the server ended the stream") }
                        if echoed && echo.count != payload.count { throw RPCError(.dataLoss, "echo of \(payload.count) B came back as \(echo.count) B") }
                        self.completed.add(1, ordering: .relaxed)
                        if t0 >= measureFrom { buffer.append(UInt32(clamping: t0.nanoseconds(to: .now) / 1000)) }
                    } catch {
                        self.fail(error)
                        stream.cancel()
                        return
                    }
                }
                try? await stream.closeSend()
                while (try? await stream.receive()) ?? nil != nil {}
            }
        }
        return await report(workers: workers, measureFrom: measureFrom, stopAt: stopAt)
    }

    private func report(workers: [Task<Void, Never>], measureFrom: Timestamp, stopAt: Timestamp) async -> Bool {
        try? await Task.sleep(until: measureFrom.instant)
        let stealAtStart = LoopCPU.stealTicks()
        let serverCPUAtStart = await LoopCPU.micros(serverLoops)
        let processCPUAtStart = serverProcess.flatMap(LoopCPU.processMicros)
        let clientCPUAtStart = await LoopCPU.micros(clientLoops)
        let serverMallocsAtStart = await LoopCPU.mallocs(serverLoops)
        let clientMallocsAtStart = await LoopCPU.mallocs(clientLoops)
        let callsAtStart = completed.load(ordering: .relaxed)
        let errorsAtStart = failed.load(ordering: .relaxed)
        if progress {
            var lastCalls = callsAtStart
            var lastTime = Timestamp.now
            var marks = Dictionary(uniqueKeysWithValues: samples.keys.map { ($0, 0) })
            while lastTime < stopAt {
                try? await Task.sleep(until: min(stopAt, lastTime.advanced(by: .seconds(1))).instant)
                let now = Timestamp.now
                let calls = completed.load(ordering: .relaxed)
                var recent: [UInt32] = []
                for (key, buffer) in samples {
                    let mark = marks[key]!
                    let (some, end) = (try? await buffer.loop.submit { buffer.every(8, from: mark) }) ?? ([], mark)
                    recent += some
                    marks[key] = end
                }
                recent.sort()
                func pct(_ p: Double) -> String { recent.isEmpty ? "-" : "\(recent[min(recent.count - 1, Int(Double(recent.count) * p))]) µs" }
                let rate = Double(calls - lastCalls) / max(1e-9, Double(lastTime.nanoseconds(to: now)) / 1e9)
                say(String(format: "  %5.1f s  %9.0f calls/s  %d errors  p50 %@  p99 %@", Double(measureFrom.nanoseconds(to: now)) / 1e9, rate,
                           failed.load(ordering: .relaxed) - errorsAtStart, pct(0.5), pct(0.99)))
                lastCalls = calls
                lastTime = now
            }
        } else {
            try? await Task.sleep(until: stopAt.instant)
        }
        let serverCPUAtEnd = await LoopCPU.micros(serverLoops)
        let processCPUAtEnd = serverProcess.flatMap(LoopCPU.processMicros)
        let stealAtEnd = LoopCPU.stealTicks()
        let clientCPUAtEnd = await LoopCPU.micros(clientLoops)
        let serverMallocsAtEnd = await LoopCPU.mallocs(serverLoops)
        let clientMallocsAtEnd = await LoopCPU.mallocs(clientLoops)
        let callsAtEnd = completed.load(ordering: .relaxed)
        for w in workers { await w.value }

        var sorted: [UInt32] = []
        for buffer in samples.values { sorted += (try? await buffer.loop.submit { buffer.all }) ?? [] }
        sorted.sort()
        let calls = sorted.count
        let errors = failed.load(ordering: .relaxed)
        let seconds = duration.inSeconds
        func pct(_ p: Double) -> String {
            guard !sorted.isEmpty else { return "-" }
            return "\(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) µs"
        }
        func hundredths(_ x: Double) -> String { String(format: "%.2f", x) }
        say("calls: \(calls) ok, \(errors) errors in \(seconds) s")
        say("throughput: \(Int(Double(calls) / seconds)) calls/s" + (rate.map { " (open loop at \(Int($0)) calls/s)" } ?? ""))
        let notMade = skipped.load(ordering: .relaxed)
        if let rate, notMade > 0 {
            say("note: \(notMade) scheduled calls were not made by the end: the client fell behind its schedule of \(Int(rate)) calls/s (a late call's latency includes its wait)")
        }
        say("latency: p50 \(pct(0.50))  p90 \(pct(0.90))  p99 \(pct(0.99))  p99.9 \(pct(0.999))  max \(sorted.last.map { "\($0) µs" } ?? "-")")
        var serverCPUPerCall: Double?
        var clientCPUPerCall: Double?
        if calls > 0 {
            if !serverLoops.isEmpty {
                serverCPUPerCall = (serverCPUAtEnd - serverCPUAtStart) / Double(calls)
                say("server CPU per call: \(hundredths(serverCPUPerCall!)) µs (server loop threads)")
            } else if let a = processCPUAtStart, let b = processCPUAtEnd, let pid = serverProcess {
                serverCPUPerCall = (b - a) / Double(calls)
                say("server CPU per call: \(hundredths(serverCPUPerCall!)) µs (process \(pid), all threads)")
            }
            clientCPUPerCall = (clientCPUAtEnd - clientCPUAtStart) / Double(calls)
            say("client CPU per call: \(hundredths(clientCPUPerCall!)) µs (client loop threads)")
        }
        if let c0 = clientMallocsAtStart, let c1 = clientMallocsAtEnd, callsAtEnd > callsAtStart {
            let n = Double(callsAtEnd - callsAtStart)
            var line = "allocations per call:"
            if let s0 = serverMallocsAtStart, let s1 = serverMallocsAtEnd, !serverLoops.isEmpty { line += " server \(hundredths(Double(s1 - s0) / n))," }
            say(line + " client \(hundredths(Double(c1 - c0) / n)) (loop threads)")
        }
        var steal: Double?
        if let a = stealAtStart, let b = stealAtEnd {
            steal = LoopCPU.stealShare(ticks: b - a, seconds: seconds)
            say(String(format: "steal: %.1f%% of the machine's CPU time (host contention; figures are trustworthy near 0)", steal!))
        }
        if let first = firstError.withLock({ $0 }) { say("first error: \(first)") }
        say("")
        say("| calls | errors | calls/s | p50 | p90 | p99 | p99.9 | max |")
        say("|---|---|---|---|---|---|---|---|")
        say("| \(calls) | \(errors) | \(Int(Double(calls) / seconds)) | \(pct(0.5)) | \(pct(0.9)) | \(pct(0.99)) | \(pct(0.999)) | \(sorted.last.map { "\($0) µs" } ?? "-") |")
        if json {
            func number(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "null" }
            func percentile(_ p: Double) -> String { sorted.isEmpty ? "null" : "\(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])" }
            say("{\"calls\":\(calls),\"seconds\":\(number(seconds)),\"calls_per_s\":\(number(Double(calls) / seconds)),\"p50_us\":\(percentile(0.5)),"
                + "\"p99_us\":\(percentile(0.99)),\"p999_us\":\(percentile(0.999)),\"errors\":\(errors),"
                + "\"server_cpu_us_per_call\":\(number(serverCPUPerCall)),\"client_cpu_us_per_call\":\(number(clientCPUPerCall)),\"steal_pct\":\(number(steal)),\"skipped\":\(notMade)}")
        }
        return errors == 0 && calls > 0
    }
}

/// Latencies in microseconds, appended by the workers of one loop in turn. Loop-confined (checked); read on the
/// loop through `submit`.
final class LoopSamples: @unchecked Sendable {
    let loop: EventLoop
    private var values: [UInt32] = []

    init(loop: EventLoop) {
        self.loop = loop
        values.reserveCapacity(1 << 20)
    }

    func append(_ v: UInt32) {
        assert(loop.inEventLoop)
        values.append(v)
    }

    /// Every `step`-th value from `start`, and where the next call should start.
    func every(_ step: Int, from start: Int) -> ([UInt32], Int) {
        precondition(loop.inEventLoop)
        return (Array(stride(from: start, to: values.count, by: step).map { values[$0] }), values.count)
    }

    var all: [UInt32] {
        precondition(loop.inEventLoop)
        return values
    }
}

/// CPU time and allocations of event-loop threads, and the host's steal time: the figures a noisy machine cannot fake.
enum LoopCPU {
    /// The summed CPU time of `loops`' threads, in microseconds.
    static func micros(_ loops: [EventLoop]) async -> Double {
        var total = 0.0
        for loop in loops { total += (try? await loop.submit { threadCPUMicros() }) ?? 0 }
        return total
    }

    typealias MallocCount = @convention(c) () -> UInt64
    /// The preloaded malloc counter's per-thread count (Benchmarks/malloc-counter), when it is loaded.
    static let mallocCount: MallocCount? = dlsym(dlopen(nil, RTLD_NOW), "micro_malloc_count").map { unsafeBitCast($0, to: MallocCount.self) }

    /// Allocations made so far on `loops`' threads; nil without the counter.
    static func mallocs(_ loops: [EventLoop]) async -> UInt64? {
        guard let count = mallocCount else { return nil }
        var total: UInt64 = 0
        for loop in loops { total += (try? await loop.submit { count() }) ?? 0 }
        return total
    }

    /// The CPU time (user + system, all threads) of process `pid` so far, in microseconds, from /proc; nil when it is gone.
    static func processMicros(_ pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After the command name: state is field 3, utime 14 and stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))) * 1e6
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
        Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) / (seconds * Double(EventLoopGroup.coreCount)) * 100
    }
}

/// CPU time of the calling thread, in microseconds.
func threadCPUMicros() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1e3
}
