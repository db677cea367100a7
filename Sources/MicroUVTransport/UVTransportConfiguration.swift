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
    /// A frame that has begun must be complete this long after it began (or after the last complete frame, when
    /// later), else the connection closes with FRAME_TIMEOUT: a peer that dribbles bytes holds nothing for long.
    /// A frame that takes longer to arrive (16 MiB on a link slower than 560 KB/s at the default) is cut off too.
    /// 0: no limit.
    public var frameTimeoutMilliseconds: UInt64 = 30_000

    // Server limits against hostile or broken peers (docs/PROTOCOL.md §8.10).
    /// Bytes that the server's connections together may hold for incomplete frames; a connection whose buffer
    /// would take it past this is closed with DRAIN RESOURCE_LIMIT. Buffers grow with the bytes that arrived, not
    /// with the length a header announces. 0: no limit.
    public var maxBufferedInboundBytes = 256 << 20
    /// Bytes one connection may hold for its incomplete frame; 0: up to its MAX_FRAME_SIZE.
    public var maxBufferedInboundBytesPerConnection = 0
    /// Connections the server holds at once; a connection beyond is told DRAIN RESOURCE_LIMIT and closed before
    /// any stream. 0: no limit (the process's descriptor limit still applies).
    public var maxConnections = 0
    /// Connections one client IP address may hold at once, enforced the same way. 0: no limit.
    public var maxConnectionsPerClientAddress = 0

    public init() {}
}
