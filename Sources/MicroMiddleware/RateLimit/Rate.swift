/// A rate for a token bucket: calls per second on average, and how many may come at once after a quiet spell.
public struct Rate: Sendable, Hashable, CustomStringConvertible {
    public var perSecond: Double
    public var burst: Int

    /// `burst` defaults to a tenth of a second's worth (at least 1).
    public init(perSecond: Double, burst: Int? = nil) {
        precondition(perSecond > 0, "a rate must be above 0 per second")
        self.perSecond = perSecond
        self.burst = max(1, burst ?? Int(perSecond / 10))
    }

    public var description: String { "\(perSecond)/s (burst \(burst))" }
}
