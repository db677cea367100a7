public import MicroCore

/// What a ``ClientMiddleware`` sees of one attempt: a call sent to one node (the first try, a retry or a hedge).
///
/// A middleware may add to `metadata` (sent with this attempt only). It must not change the node: to keep a call
/// off a node, throw (see ``CircuitOpenError``).
public struct ClientAttempt: Sendable {
    public let service: String
    public let endpoint: String
    /// The node's address ("host:port").
    public let address: String
    /// The selector's node, or nil when the call named an address.
    public let node: Node?
    /// 1 for the first attempt, 2 for the next, ... (hedges count as attempts).
    public let number: UInt16
    /// Whether this attempt is a hedge: sent while an earlier one is still waiting for its answer.
    public let isHedge: Bool
    public var metadata: Metadata
    /// The call's deadline (the attempt's too).
    public let deadline: Timestamp
    /// When the attempt began (for its duration).
    public let startedAt: Timestamp

    public init(service: String, endpoint: String, address: String, node: Node?, number: UInt16, isHedge: Bool,
                metadata: Metadata, deadline: Timestamp, startedAt: Timestamp = .now) {
        self.service = service
        self.endpoint = endpoint
        self.address = address
        self.node = node
        self.number = number
        self.isHedge = isHedge
        self.metadata = metadata
        self.deadline = deadline
        self.startedAt = startedAt
    }

    /// The selector's name for the node: its id, else the address.
    public var nodeName: String { node?.id ?? address }
}
