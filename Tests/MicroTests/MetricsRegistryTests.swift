import CoreMetrics
import Micro
import Prometheus
import Testing

/// The lock-free timers of ``MetricsRegistry``: written as swift-prometheus writes its own duration histograms,
/// exact under concurrent records, and made, shared and dropped through swift-metrics' factory calls.
@Suite struct MetricsRegistryTests {
    static let values: [Int64] = [0, 1_000, 999_999, 5_000_000, 5_000_001, 7_000_000, 250_000_000, 20_000_000_000]

    /// The text of one metric family alone: its lines, the `# TYPE` line left out.
    static func lines(_ text: String, _ name: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.hasPrefix(name) }
    }

    @Test("a timer reads exactly as swift-prometheus's histogram of the same records, labels escaped")
    func sameTextAsSwiftPrometheus() {
        let ours = MetricsRegistry()
        let reference = PrometheusCollectorRegistry()
        let dimensions = [("service", #"a"b\c"#), ("endpoint", "E.Call")]
        let timer = ours.factory.makeTimer(label: "rpc_duration", dimensions: dimensions)
        let referenceTimer = PrometheusMetricsFactory(registry: reference).makeTimer(label: "rpc_duration", dimensions: dimensions)
        for value in Self.values {
            timer.recordNanoseconds(value)
            referenceTimer.recordNanoseconds(value)
        }
        let text = ours.emitToString()
        let expected = Self.lines(reference.emitToString(), "rpc_duration")
        #expect(expected.count == 14, "11 bounds, +Inf, sum, count: \(expected)")
        #expect(Self.lines(text, "rpc_duration") == expected)
        #expect(text.contains("# TYPE rpc_duration histogram\n"))
    }

    @Test("a timer without labels reads as swift-prometheus's")
    func sameTextWithoutLabels() {
        let ours = MetricsRegistry()
        let reference = PrometheusCollectorRegistry()
        let timer = ours.factory.makeTimer(label: "bare", dimensions: [])
        let referenceTimer = PrometheusMetricsFactory(registry: reference).makeTimer(label: "bare", dimensions: [])
        for value in Self.values {
            timer.recordNanoseconds(value)
            referenceTimer.recordNanoseconds(value)
        }
        #expect(Self.lines(ours.emitToString(), "bare") == Self.lines(reference.emitToString(), "bare"))
    }

    @Test("records from many threads at once are all counted, and the sum is exact")
    func concurrentRecords() async {
        let registry = MetricsRegistry(timerBuckets: [.nanoseconds(1_500), .milliseconds(1)])
        let timer = registry.factory.makeTimer(label: "t", dimensions: [])
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for i in 0..<10_000 { timer.recordNanoseconds(Int64(worker * 1_000 + i % 3)) }
                }
            }
        }
        // Worker w records w*1000 + 0, 1, 2, 0, ...: 10,000 records of sum 10,000,000*w + 9,999.
        let sum: Int64 = 60_000_000 + 4 * 9_999
        let low = Duration.nanoseconds(1_500).bucketRepresentation
        let text = registry.emitToString()
        #expect(text.contains(#"t_bucket{le="\#(low)"} 20000"#), "workers 0 and 1 are at most 1.5 µs: \(text)")
        #expect(text.contains(#"t_bucket{le="0.001"} 40000"#), "\(text)")
        #expect(text.contains(#"t_bucket{le="+Inf"} 40000"#), "\(text)")
        #expect(text.contains("t_count 40000"), "\(text)")
        #expect(text.contains("t_sum \(Duration.nanoseconds(sum).bucketRepresentation)\n"), "\(text)")
    }

    @Test("the same name and labels give the same timer; a destroyed one is no longer written; others go to Prometheus")
    func factoryCalls() {
        let registry = MetricsRegistry(timerBucketsByName: ["fine": [.microseconds(100)]])
        let factory = registry.factory
        let a = factory.makeTimer(label: "fine", dimensions: [("k", "v")])
        let b = factory.makeTimer(label: "fine", dimensions: [("k", "v")])
        let c = factory.makeTimer(label: "fine", dimensions: [("k", "w")])
        let (ia, ib, ic) = (ObjectIdentifier(a as AnyObject), ObjectIdentifier(b as AnyObject), ObjectIdentifier(c as AnyObject))
        #expect(ia == ib)
        #expect(ia != ic)
        a.recordNanoseconds(50_000)
        factory.makeCounter(label: "calls_total", dimensions: []).increment(by: 3)
        var text = registry.emitToString()
        #expect(text.contains(#"fine_bucket{k="v",le="0.0001"} 1"#), "own bounds by name: \(text)")
        #expect(text.contains(#"fine_bucket{k="w",le="0.0001"} 0"#), "\(text)")
        #expect(text.contains("calls_total 3"), "\(text)")
        #expect(text.components(separatedBy: "# TYPE fine histogram").count == 2, "one TYPE line per family: \(text)")
        factory.destroyTimer(a)
        text = registry.emitToString()
        #expect(!text.contains(#"k="v""#), "\(text)")
        #expect(text.contains(#"k="w""#), "\(text)")
        factory.destroyTimer(c)
        #expect(!registry.emitToString().contains("fine"))
    }

    @Test("a label that is not a Prometheus name is written with its bad characters replaced, not refused")
    func invalidNames() {
        let registry = MetricsRegistry()
        registry.factory.makeTimer(label: "1st call.duration", dimensions: []).recordNanoseconds(1)
        let text = registry.emitToString()
        #expect(text.contains("# TYPE _1st_call_duration histogram"), "\(text)")
        #expect(text.contains("_1st_call_duration_count 1"), "\(text)")
    }
}
