internal import MicroCore
/// Settings of ``EtcdRegistry``.
public struct EtcdConfiguration: Sendable, Hashable {
    /// Client URLs of the cluster's members, `host:port` or `http://host:port`. Requests go to one member and
    /// move to the next when it fails.
    public var endpoints: [String] = ["127.0.0.1:2379"]
    /// Keys live under this prefix: `<prefix><service>/<node id>` (go-micro's layout).
    public var prefix: String = "/micro/registry/"
    /// Deadline of every unary request (connect included). With quorum lost etcd does not answer at all.
    public var requestTimeout: Duration = .seconds(2)
    /// Keep-alives go out at this fraction of the shortest TTL.
    public var keepAliveFraction: Double = 1.0 / 3.0
    /// Watch reconnects and failed keep-alive rounds back off from the first to the max delay, doubling.
    public var reconnectBackoffFirst: Duration = .milliseconds(100)
    public var reconnectBackoffMax: Duration = .seconds(2)

    public init(endpoints: [String] = ["127.0.0.1:2379"]) {
        self.endpoints = endpoints
    }
}
