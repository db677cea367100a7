public import CoreMetrics
public import Prometheus

/// The swift-metrics backend of a ``MetricsRegistry``: timers become lock-free ``TimerHistogram``s, everything
/// else goes to swift-prometheus's factory over the registry's ``MetricsRegistry/prometheus``.
public struct MicroMetricsFactory: MetricsFactory {
    public let registry: MetricsRegistry
    /// Counters, meters, recorders. Its name and label sanitizer applies to timers too; its duration buckets do
    /// not (timers take the registry's ``MetricsRegistry/timerBuckets``).
    public var prometheus: PrometheusMetricsFactory

    public init(registry: MetricsRegistry) {
        self.registry = registry
        prometheus = PrometheusMetricsFactory(registry: registry.prometheus)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let (name, labels) = prometheus.nameAndLabelSanitizer(label, dimensions)
        return registry.timer(name: Self.metricName(name), labels: labels)
    }

    public func destroyTimer(_ handler: any TimerHandler) {
        if let timer = handler as? TimerHistogram { registry.remove(timer) }
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(label: label, dimensions: dimensions)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeMeter(label: label, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    public func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }

    /// A valid Prometheus metric name: characters outside `[a-zA-Z0-9_:]` become `_`, and a leading digit gets a
    /// `_` before it (swift-prometheus stops the process on an invalid name; a timer's label is not worth that).
    static func metricName(_ label: String) -> String {
        var out = ""
        for scalar in label.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "_", ":", "0"..."9": out.unicodeScalars.append(scalar)
            default: out.append("_")
            }
        }
        if out.first.map({ $0.isNumber }) ?? true { out = "_" + out }
        return out
    }
}
