public import MicroCore

/// How a ``Server`` announces itself and serves.
public struct ServerConfiguration: Sendable {
    /// The service name callers use, e.g. `greeter`.
    public var name: String
    public var version: String = "latest"
    /// Metadata of the service in the registry.
    public var metadata: [String: String] = [:]
    /// Metadata of this node (e.g. `datacenter`, `weight`), for selector filters and weights.
    public var nodeMetadata: [String: String] = [:]
    /// The address to register instead of the transport's bound one (e.g. behind NAT).
    public var advertiseAddress: String?
    /// Registration TTL: a node that stops renewing (it crashed) disappears after it.
    public var registerTTL: Duration = .seconds(90)
    /// How often the registration is renewed; well below the TTL.
    public var registerInterval: Duration = .seconds(30)
    /// Calls handled at once; above it new calls get a restartable NACK, so that clients retry elsewhere
    /// instead of queueing here.
    public var maxConcurrentCalls: Int = 10_000
    /// How long a graceful stop lets in-flight calls finish.
    public var gracePeriod: Duration = .seconds(10)
    /// Codecs by content type; a request in another content type is refused with `invalidArgument`.
    public var codecs: CodecSet = .standard
    /// What ``Server/subscribe(topic:queue:handler:)`` subscribes with; nil: subscribing throws
    /// ``RPCUsageError``.
    public var broker: (any Broker)? = nil
    /// The middleware around every handler, stream handler and subscriber (nil: none, and no cost). Add with
    /// ``use(_:)``.
    public var middleware: (any ServerMiddleware)? = nil {
        didSet { hooks = nil }
    }
    /// ``middleware``'s synchronous hooks when ``use(_:)`` set it last: made where the chain's type is known, so
    /// they run code specialized for it (``ServerHooks``).
    @usableFromInline var hooks: ServerHooks?

    public init(name: String) { self.name = name }

    /// Adds middleware inside what is there: the first listed runs outermost of those added. Inlined into the
    /// caller, where the chain's type is known (see ``ServerHooks``).
    @inlinable
    public mutating func use<M: ServerMiddleware>(@ServerMiddlewareBuilder _ build: () -> M) {
        // An empty chain is no chain: the path without middleware.
        if M.self == PassThroughServerMiddleware.self { return }
        let added = build()
        if let existing = middleware {
            let chain = ServerMiddlewareChain(AnyServerMiddleware(existing), added)
            middleware = chain
            hooks = ServerHooks(chain)
        } else {
            middleware = added
            hooks = ServerHooks(added)
        }
    }
}
