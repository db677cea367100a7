public import CoreMetrics
import Synchronization

/// A histogram of durations behind a swift-metrics `Timer`, kept without a lock: a record adds one to the
/// bucket of its value and the value to the sum, two relaxed atomic adds. ``MetricsRegistry`` writes it in the
/// Prometheus text format, as swift-prometheus writes its own duration histograms (cumulative `le` buckets,
/// `+Inf`, `_sum` in seconds, `_count`).
///
/// Why not swift-prometheus's histogram: its record takes a lock and compares the value with every bucket bound
/// (it keeps cumulative counts), several hundred instructions per call, and the lock is shared by every loop
/// that records into the same series. Here a record is a short scan of integer bounds and two adds.
///
/// Thread-safe. Not promised: a reading consistent across buckets and sum; a record that lands while the
/// registry writes the histogram may be in the buckets and not yet in the sum (counts and `+Inf` always agree,
/// because the count is the buckets' total).
public final class TimerHistogram: TimerHandler, Sendable {
    /// A bucket's count; one object each, since atomics cannot live in an array.
    final class Cell: Sendable {
        let count = Atomic<Int>(0)
    }

    public let name: String
    public let labels: [(String, String)]
    /// Upper bounds in nanoseconds, ascending and distinct.
    let bounds: [Int64]
    /// The count of each bucket alone (not cumulative); the last one counts values above every bound.
    let cells: [Cell]
    /// Nanoseconds, wrapping (after 292 years of recorded time).
    let sum = Atomic<Int64>(0)
    /// The labels as written between the braces, made once.
    let renderedLabels: [UInt8]

    /// `buckets` are sorted and deduplicated; negative ones are dropped.
    init(name: String, labels: [(String, String)], buckets: [Duration]) {
        self.name = name
        self.labels = labels
        bounds = Array(Set(buckets.filter { $0 >= .zero }.map(Self.nanoseconds))).sorted()
        cells = (0...bounds.count).map { _ in Cell() }
        renderedLabels = Self.render(labels)
    }

    public func recordNanoseconds(_ duration: Int64) {
        var i = 0
        let n = bounds.count
        while i < n && duration > bounds[i] { i += 1 }
        cells[i].count.wrappingAdd(1, ordering: .relaxed)
        sum.wrappingAdd(duration, ordering: .relaxed)
    }

    /// Cumulative counts by bound (the last is `+Inf`, the total), and the sum.
    func snapshot() -> (cumulative: [Int], sum: Int64) {
        var running = 0
        var cumulative: [Int] = []
        cumulative.reserveCapacity(cells.count)
        for cell in cells {
            running &+= cell.count.load(ordering: .relaxed)
            cumulative.append(running)
        }
        return (cumulative, sum.load(ordering: .relaxed))
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        let (total, overflow2) = ns.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflow2 ? .max : total
    }

    /// `k="v",k="v"` with `\`, `"` and newlines escaped, as the text format asks.
    static func render(_ labels: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, (key, value)) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: key.utf8)
            out.append(contentsOf: #"=""#.utf8)
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
                case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
                default: out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        return out
    }
}
