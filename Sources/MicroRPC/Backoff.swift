internal import MicroCore
/// Exponential backoff with jitter between retries: base x multiplier^(retry-1), at most `maximum`, each delay
/// moved by up to ±`jitter` of itself so that clients retrying together spread out.
public struct Backoff: Sendable, Hashable {
    public var base: Duration
    public var maximum: Duration
    public var multiplier: Double
    /// 0...1: the share of each delay that is random.
    public var jitter: Double

    public init(base: Duration = .milliseconds(10), maximum: Duration = .seconds(1), multiplier: Double = 2, jitter: Double = 0.2) {
        self.base = base
        self.maximum = maximum
        self.multiplier = multiplier
        self.jitter = min(1, max(0, jitter))
    }

    /// The delay before retry number `retry` (1 for the first retry).
    public func delay(forRetry retry: Int) -> Duration {
        let baseSeconds = Double(base.components.seconds) + Double(base.components.attoseconds) / 1e18
        let maxSeconds = Double(maximum.components.seconds) + Double(maximum.components.attoseconds) / 1e18
        var d = baseSeconds * pow(multiplier, Double(max(0, retry - 1)))
        d = min(d, maxSeconds)
        if jitter > 0 { d *= Double.random(in: (1 - jitter)...(1 + jitter)) }
        return .nanoseconds(Int64(max(0, d) * 1e9))
    }
}

private func pow(_ x: Double, _ y: Double) -> Double {
    var r = 1.0
    var i = 0
    while Double(i) < y {
        r *= x
        i += 1
    }
    return r
}
