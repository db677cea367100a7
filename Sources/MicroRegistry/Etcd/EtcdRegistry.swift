public import MicroCore
import Foundation
public import MicroEventLoop
import MicroHTTP
import Synchronization

/// A registry in etcd (v3 API through its JSON gateway, Debian's `etcd-server` 3.4 and later), spoken with the
/// project's own HTTP/1.1 client on a libuv loop.
///
/// Each node is one key, `<prefix><service>/<node id>`, whose value is the service as JSON with that one node
/// (go-micro's layout). With a TTL the key is bound to a lease of that TTL, one lease per node, which this
/// registry keeps alive (at a third of the TTL) until the node is deregistered or the registry is closed: a
/// crashed process stops renewing and its nodes expire. When etcd loses the lease (it was down longer than
/// the TTL, or came back empty) the registry registers the node again with a new lease. Reads are
/// serializable (any member answers from its own state, so reads keep working with quorum lost); every
/// request has a deadline and moves to the next endpoint on failure. Watches resume at the last revision seen
/// plus one after a broken connection, on any member.
///
/// Not promised: that the keep-alive beats a TTL shorter than about three round trips to etcd; that a
/// watch reports events that were compacted away while it was disconnected.
public final class EtcdRegistry: Registry {
    public let configuration: EtcdConfiguration
    let client: EtcdClient
    private let ownedLoop: EventLoop?

    struct Registration {
        var service: Service  // exactly one node
        var ttl: Duration?
        var lease: Int64?
    }

    struct State {
        /// key -> what we registered there. The keep-alive task renews these.
        var registrations: [String: Registration] = [:]
        var keepAlive: Task<Void, Never>?
        var closed = false
    }

    /// Guarded by its mutex.
    private let state = Mutex(State())

    /// Talks to `configuration.endpoints` on `loop` (a loop of its own when nil; ``close()`` stops it).
    public init(configuration: EtcdConfiguration = EtcdConfiguration(), loop: EventLoop? = nil) throws {
        guard !configuration.endpoints.isEmpty else { throw RegistryError.invalidConfiguration("no etcd endpoint") }
        self.configuration = configuration
        let endpoints = try configuration.endpoints.map(EtcdClient.parseEndpoint)
        ownedLoop = loop == nil ? EventLoop() : nil
        client = EtcdClient(http: HTTPClient(loop: loop ?? ownedLoop!), endpoints: endpoints,
                            requestTimeout: configuration.requestTimeout)
    }

    /// Stops renewing (the nodes then expire with their TTL; nothing is deleted) and stops the loop this
    /// registry created. Watches should be stopped first. Until closed, the keep-alive task keeps the registry
    /// alive: call this when done with it.
    public func close() async {
        let task = state.withLock { s -> Task<Void, Never>? in
            s.closed = true
            defer { s.keepAlive = nil }
            return s.keepAlive
        }
        task?.cancel()
        await task?.value
        if let ownedLoop { _ = ownedLoop.shutdownGracefully() }
    }

    func key(_ name: String, _ nodeID: String) -> String {
        configuration.prefix + escapeKeyComponent(name) + "/" + escapeKeyComponent(nodeID)
    }

    public func register(_ service: Service, options: RegisterOptions) async throws {
        try service.validate()
        if let ttl = options.ttl, ttl < .milliseconds(1) { throw RegistryError.invalid("TTL below 1 ms") }
        for node in service.nodes {
            let key = key(service.name, node.id)
            let previous = state.withLock { $0.registrations[key] }
            var registration = Registration(service: service.with(node: node), ttl: options.ttl, lease: nil)
            if previous?.ttl == options.ttl { registration.lease = previous?.lease }
            registration.lease = try await put(key, registration)
            let startKeepAlive = state.withLock { s -> Bool in
                s.registrations[key] = registration
                return registration.ttl != nil && s.keepAlive == nil && !s.closed
            }
            if startKeepAlive { startKeepAliveTask() }
        }
    }

    /// Writes the key, with the registration's lease when it still exists or a new one. Returns the lease.
    private func put(_ key: String, _ registration: Registration) async throws -> Int64? {
        let value = String(decoding: try JSONEncoder().encode(registration.service), as: UTF8.self)
        guard let ttl = registration.ttl else {
            _ = try await client.call("/v3/kv/put", EtcdPutRequest(key: key.base64, value: value.base64, lease: nil), decode: EtcdAnswer.headerOnly)
            return nil
        }
        if let lease = registration.lease {
            do {
                _ = try await client.call("/v3/kv/put", EtcdPutRequest(key: key.base64, value: value.base64, lease: EtcdInt(lease)), decode: EtcdAnswer.headerOnly)
                return lease
            } catch RegistryError.badResponse(let why) where why.contains("lease not found") {
                // Expired while we were away: fall through to a new lease.
            }
        }
        let seconds = max(1, Int64((Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18).rounded(.up)))
        var attempt = 1
        while true {
            let lease = try await client.call("/v3/lease/grant", EtcdLeaseGrantRequest(TTL: EtcdInt(seconds)), decode: EtcdAnswer.leaseGrant)
            do {
                _ = try await client.call("/v3/kv/put", EtcdPutRequest(key: key.base64, value: value.base64, lease: EtcdInt(lease)), decode: EtcdAnswer.headerOnly)
                return lease
            } catch RegistryError.badResponse(let why) where why.contains("lease not found") && attempt < 3 {
                // The new lease is gone already: a member that restarted in between, or a short TTL that ran out
                // on a slow machine. Once more with another.
                attempt += 1
            }
        }
    }

    public func deregister(_ service: Service) async throws {
        for node in service.nodes {
            let key = key(service.name, node.id)
            let registration = state.withLock { $0.registrations.removeValue(forKey: key) }
            _ = try await client.call("/v3/kv/deleterange", EtcdDeleteRequest(key: key.base64, range_end: nil), decode: EtcdAnswer.headerOnly)
            if let lease = registration?.lease {
                _ = try? await client.call("/v3/lease/revoke", EtcdLeaseIDRequest(ID: EtcdInt(lease)), decode: EtcdAnswer.headerOnly)
            }
        }
    }

    public func getService(_ name: String) async throws -> [Service] {
        let services = try await range(configuration.prefix + escapeKeyComponent(name) + "/")
        guard !services.isEmpty else { throw RegistryError.notFound(name) }
        return mergeByVersion(services)
    }

    public func listServices() async throws -> [Service] {
        let records = try await range(configuration.prefix)
        let byName = Dictionary(grouping: records, by: \.name)
        return byName.keys.sorted().flatMap { mergeByVersion(byName[$0]!) }
    }

    /// The single-node records under `prefix`, in key order. Serializable: any member answers.
    private func range(_ prefix: String) async throws -> [Service] {
        let request = EtcdRangeRequest(key: prefix.base64, range_end: prefixRangeEnd(prefix), serializable: true)
        return try await client.call("/v3/kv/range", request, decode: EtcdAnswer.range).records.map(\.service)
    }

    public func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        let prefix = configuration.prefix + (options.service.map { escapeKeyComponent($0) + "/" } ?? "")
        let watcher = EtcdWatcher(client: client, prefix: prefix, registryPrefix: configuration.prefix,
                                  backoffFirst: configuration.reconnectBackoffFirst, backoffMax: configuration.reconnectBackoffMax)
        return try await watcher.start()
    }

    // MARK: - Keep-alive

    private func startKeepAliveTask() {
        let task = Task(executorPreference: BackgroundExecutor.shared) { [weak self] in
            var failures = 0
            while !Task.isCancelled {
                guard let self else { return }
                let (interval, keys) = self.keepAliveRound()
                guard let interval else {
                    self.state.withLock { $0.keepAlive = nil }
                    return
                }
                var ok = true
                for key in keys where !Task.isCancelled {
                    do {
                        try await self.renew(key)
                    } catch {
                        ok = false
                    }
                }
                failures = ok ? 0 : failures + 1
                // While etcd is away, try again sooner than the interval, backing off.
                let delay = ok ? interval : min(interval, self.backoff(failures))
                try? await BackgroundExecutor.shared.sleep(for: delay)
            }
        }
        state.withLock { s in
            if s.keepAlive == nil && !s.closed { s.keepAlive = task } else { task.cancel() }
        }
    }

    private func backoff(_ failures: Int) -> Duration {
        var d = configuration.reconnectBackoffFirst
        for _ in 1..<max(1, failures) where d < configuration.reconnectBackoffMax { d *= 2 }
        return min(d, configuration.reconnectBackoffMax)
    }

    /// The interval until the next round (nil: nothing to renew) and the keys to renew.
    private func keepAliveRound() -> (Duration?, [String]) {
        state.withLock { s in
            let ttls = s.registrations.values.compactMap(\.ttl)
            guard let shortest = ttls.min(), !s.closed else { return (nil, []) }
            let interval = max(.milliseconds(50), shortest * configuration.keepAliveFraction)
            return (interval, s.registrations.filter { $0.value.ttl != nil }.map(\.key))
        }
    }

    /// Renews the key's lease; registers it again when etcd no longer knows the lease (or the key).
    private func renew(_ key: String) async throws {
        guard let registration = state.withLock({ $0.registrations[key] }) else { return }
        var alive = false
        if let lease = registration.lease {
            alive = try await client.call("/v3/lease/keepalive", EtcdLeaseIDRequest(ID: EtcdInt(lease)), decode: EtcdAnswer.keepAlive)
        }
        if alive { return }
        var fresh = registration
        fresh.lease = nil
        fresh.lease = try await put(key, fresh)
        let deregistered = state.withLock { s -> Bool in
            // Only if nobody deregistered or re-registered it meanwhile.
            if s.registrations[key]?.lease == registration.lease { s.registrations[key] = fresh }
            return s.registrations[key] == nil
        }
        if deregistered {
            // Deregistered while we were putting it back: take it out again.
            _ = try? await client.call("/v3/kv/deleterange", EtcdDeleteRequest(key: key.base64, range_end: nil), decode: EtcdAnswer.headerOnly)
            if let lease = fresh.lease {
                _ = try? await client.call("/v3/lease/revoke", EtcdLeaseIDRequest(ID: EtcdInt(lease)), decode: EtcdAnswer.headerOnly)
            }
        }
    }
}
