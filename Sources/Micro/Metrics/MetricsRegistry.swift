import CoreMetrics
public import Prometheus
import Synchronization

/// Where a process's metrics are kept for `/metrics`, in the Prometheus text format: counters, gauges and
/// recorders in a swift-prometheus registry (``prometheus``), and swift-metrics timers as ``TimerHistogram``s,
/// which record without a lock (the per-call latencies of `MetricsMiddleware` are timers). Hand ``factory`` to
/// `MetricsMiddleware` or to `MetricsSystem.bootstrap`.
///
/// Thread-safe. Not promised: a name used both for a timer and for another kind of metric is written twice
/// (swift-prometheus refuses such a clash within its own registry; the two registries do not see each other).
public final class MetricsRegistry: Sendable {
    /// Counters, gauges and value histograms; register your own Prometheus metrics here.
    public let prometheus: PrometheusCollectorRegistry
    /// Bucket bounds of timers without their own in ``timerBucketsByName``.
    public let timerBuckets: [Duration]
    /// Bucket bounds of given timers, by metric name.
    public let timerBucketsByName: [String: [Duration]]
    /// Timer histograms by metric name, each family in the order made. Guarded by its mutex.
    private let timers = Mutex<[String: [TimerHistogram]]>([:])

    /// The default bounds are swift-prometheus's (5 ms to 10 s), so that `/metrics` reads as it would there.
    public init(prometheus: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
                timerBuckets: [Duration] = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()).defaultDurationHistogramBuckets,
                timerBucketsByName: [String: [Duration]] = [:]) {
        self.prometheus = prometheus
        self.timerBuckets = timerBuckets
        self.timerBucketsByName = timerBucketsByName
    }

    /// The swift-metrics backend that records into this registry.
    public var factory: MicroMetricsFactory { MicroMetricsFactory(registry: self) }

    /// The timer of `name` with `labels`, made on first use.
    func timer(name: String, labels: [(String, String)]) -> TimerHistogram {
        timers.withLock { families in
            if let existing = families[name]?.first(where: { Self.same($0.labels, labels) }) { return existing }
            let timer = TimerHistogram(name: name, labels: labels, buckets: timerBucketsByName[name] ?? timerBuckets)
            families[name, default: []].append(timer)
            return timer
        }
    }

    /// Drops `timer` from later readings; an unknown one is ignored.
    func remove(_ timer: TimerHistogram) {
        timers.withLock { families in
            families[timer.name]?.removeAll { $0 === timer }
            if families[timer.name]?.isEmpty == true { families[timer.name] = nil }
        }
    }

    /// Appends every metric in the Prometheus text format: the Prometheus registry's, then the timers by name.
    public func emit(into buffer: inout [UInt8]) {
        prometheus.emit(into: &buffer)
        let families = timers.withLock { $0 }
        for name in families.keys.sorted() {
            buffer.append(contentsOf: "# TYPE \(name) histogram\n".utf8)
            for timer in families[name]! { timer.emit(into: &buffer) }
        }
    }

    /// Every metric in the Prometheus text format.
    public func emitToBuffer() -> [UInt8] {
        var buffer: [UInt8] = []
        emit(into: &buffer)
        return buffer
    }

    public func emitToString() -> String { String(decoding: emitToBuffer(), as: UTF8.self) }

    private static func same(_ a: [(String, String)], _ b: [(String, String)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
