
/// Picks the node for each call of a service (go-micro's `selector.Selector`).
///
/// ``select(_:options:)`` returns a ``Next``: each `next()` hands out a node and counts it as outstanding until
/// ``mark(_:node:outcome:)`` reports how the call went (success, failure, or ignored), with the latency the
/// caller saw. Outcomes feed the strategies (least outstanding, peak EWMA) and ejection of failing nodes.
/// ``reset(_:)`` forgets the service's outcomes, ejections and strategy state.
///
/// Contract: every node a `next()` returns must be marked exactly once, or it stays counted as outstanding.
public protocol Selector: Sendable {
    func select(_ service: String, options: SelectOptions) async throws -> Next
    func mark(_ service: String, node: Node, outcome: Outcome)
    func reset(_ service: String)
}

extension Selector {
    public func select(_ service: String) async throws -> Next {
        try await select(service, options: SelectOptions())
    }
}
