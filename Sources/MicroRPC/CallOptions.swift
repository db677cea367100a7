public import MicroCore

/// Options of one call; unset values take the client's configuration.
public struct CallOptions: Sendable {
    /// This call's own timeout. The effective deadline is the earlier of now + timeout and the deadline the
    /// calling handler received (``RPCContext``).
    public var timeout: Duration?
    /// Retries after the first attempt (nil: the client's).
    public var retries: Int?
    /// Whether the endpoint may run twice without harm: then a call whose outcome is unknown (connection lost
    /// mid-call) may be retried too. Otherwise only calls whose work certainly did not start are retried.
    public var idempotent: Bool
    /// Call this address ("host:port") instead of selecting a node of the service.
    public var address: String?
    /// How nodes are chosen and which qualify (strategy, filters by version, label or endpoint, canary
    /// weights), when the client has a selector.
    public var selection: SelectOptions
    /// Whether a call that finds no node of its service waits for one until its deadline (nil: the client's
    /// ``ClientConfiguration/waitForNode``).
    public var waitForNode: Bool?
    /// Hedging of this call when it is idempotent (nil: the client's ``ClientConfiguration/hedging``).
    public var hedging: HedgingPolicy? {
        get { hedgingBox?.policy }
        set { hedgingBox = newValue.map(HedgingBox.init) }
    }
    /// Boxed: the policy is rarely set, and options are copied on every call.
    private var hedgingBox: HedgingBox?

    public init(timeout: Duration? = nil, retries: Int? = nil, idempotent: Bool = false, address: String? = nil,
                selection: SelectOptions = SelectOptions(), waitForNode: Bool? = nil, hedging: HedgingPolicy? = nil) {
        self.hedgingBox = hedging.map(HedgingBox.init)
        self.timeout = timeout
        self.retries = retries
        self.idempotent = idempotent
        self.address = address
        self.selection = selection
        self.waitForNode = waitForNode
    }
}

/// A hedging policy kept by reference in ``CallOptions``.
final class HedgingBox: Sendable {
    let policy: HedgingPolicy
    init(_ policy: HedgingPolicy) { self.policy = policy }
}
