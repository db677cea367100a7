/// How a call to a node ended, as reported by ``Selector/mark(_:node:outcome:)``.
public enum Outcome: Sendable, Hashable {
    /// The node answered (an application error from the handler is still a success for the node).
    case success(latency: Duration)
    /// The node failed the call (connect error, reset, timeout, server overload).
    case failure(latency: Duration)
    /// Ends the outstanding count without judging the node (the caller cancelled).
    case ignored
    /// Nothing was sent: the caller's own circuit breaker for this node is open. The selector skips the node for
    /// this long (within its cap on ejected nodes), without counting a success or a failure.
    case held(for: Duration)
}
