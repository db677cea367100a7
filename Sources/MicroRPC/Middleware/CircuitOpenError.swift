public import MicroCore

/// The cause of the ``RPCError`` (`unavailable`) a circuit breaker fails a call or an attempt with, without
/// sending it: the breaker of the node (or of the service, when `node` is nil) is open.
///
/// The client treats an attempt failed with it as not sent: it tells the selector to skip the node for
/// `retryAfter`, and picks another node without spending a retry or the retry budget.
public struct CircuitOpenError: Error, Sendable, CustomStringConvertible {
    public var service: String
    /// The node whose breaker is open; nil: the service's.
    public var node: String?
    /// How long the breaker stays open (at least): when a probe may go.
    public var retryAfter: Duration

    public init(service: String, node: String?, retryAfter: Duration) {
        self.service = service
        self.node = node
        self.retryAfter = retryAfter
    }

    public var description: String {
        if let node { return "the circuit breaker of node \(node) of \(service) is open (probe in \(retryAfter))" }
        return "the circuit breaker of service \(service) is open (probe in \(retryAfter))"
    }

    /// The error a call fails with: `unavailable`, work not started, with this as its cause.
    public var rpcError: RPCError { RPCError(.unavailable, description, cause: self, workNotStarted: true) }
}
