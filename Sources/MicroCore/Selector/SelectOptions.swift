/// Per-call choices for ``Selector/select(_:options:)``.
public struct SelectOptions: Sendable, Hashable {
    /// Overrides the configured strategy for this call.
    public var strategy: Strategy?
    /// Every filter must pass for a node to be chosen.
    public var filters: [Filter]
    /// Overrides the configured canary weights (version -> weight) for this call; ignored when a
    /// ``Filter/version(_:)`` filter is given.
    public var canary: [String: Int]?

    public init(strategy: Strategy? = nil, filters: [Filter] = [], canary: [String: Int]? = nil) {
        self.strategy = strategy
        self.filters = filters
        self.canary = canary
    }
}
