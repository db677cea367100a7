public import Logging
internal import MicroCore
public import MicroFraming
public import MicroTLS

/// Configuration of the libuv transport, client and server side. Every property has a default.
public struct UVTransportConfiguration: Sendable {
    /// What this side announces in SETTINGS (its limits for the peer).
    public var settings = Settings()
    /// Where connection-level events go: refused TLS handshakes, protocol errors from peers (at `notice`).
    /// Nothing is logged per call or per frame.
    public var logger = Logger(label: "swift-micro.transport")
    /// TLS for every connection (a client context on clients, a server context on servers); nil: plain TCP.
    public var tls: TLSContext?

    // Client pool (per address).
    /// Most connections to one address.
    public var maxConnectionsPerAddress = 8
    /// Most streams at once on one connection (also bounded by the server's MAX_CONCURRENT_STREAMS).
    public var maxStreamsPerConnection = 1024
    /// Callers that may wait for a stream slot at once; beyond that, `poolExhausted` at once.
    public var maxWaiters = 10_000
    /// How long a dial may take, in milliseconds.
    public var dialTimeoutMilliseconds: UInt64 = 5_000
    /// A connection with no stream for this long is closed (measured on idle time, not age). 0: never.
    public var idleTimeoutMilliseconds: UInt64 = 60_000
    /// A connection older than this takes no new streams and closes once empty; jittered by ±10%. 0: no limit.
    public var maxConnectionAgeMilliseconds: UInt64 = 0

    // Both sides.
    /// With no frame received for this long, send a PING. 0: no keepalive.
    public var keepaliveIntervalMilliseconds: UInt64 = 30_000
    /// A PING unanswered for this long means the peer is dead: the connection closes, its streams fail.
    public var pingTimeoutMilliseconds: UInt64 = 10_000
    /// A peer whose SETTINGS do not arrive within this long is dropped.
    public var settingsTimeoutMilliseconds: UInt64 = 10_000
    /// How often housekeeping runs (timeouts, pings), in milliseconds.
    public var housekeepingIntervalMilliseconds: UInt64 = 250

    public init() {}
}
