/// How a call to a node ended, as reported by ``Selector/mark(_:node:outcome:)``.
public enum Outcome: Sendable, Hashable {
    /// The node answered (an application error from the handler is still a success for the node).
    case success(latency: Duration)
    /// The node failed the call (connect error, reset, timeout, server overload).
    case failure(latency: Duration)
    /// Ends the outstanding count without judging the node (the caller cancelled).
    case ignored
    /// Another attempt of the same call answered first, and this one was cancelled after running `after` without
    /// an answer (a hedge's loser): the node was at least that slow this time. Neither a success nor a failure;
    /// the registry selector keeps the call counted outstanding for eight times `after` (as if it were still
    /// running: its end was not seen, and a call in the tail has long to go) and peak EWMA takes `after` as a
    /// latency sample. Marking it ``ignored`` instead would free the
    /// slow node's slot at once, and least-outstanding would send it more calls than it would get without hedging.
    case superseded(after: Duration)
    /// Nothing was sent: the caller's own circuit breaker for this node is open. The selector skips the node for
    /// this long (within its cap on ejected nodes), without counting a success or a failure.
    case held(for: Duration)
}
