internal import MicroCore
import Synchronization

/// Finds the ``Route`` of a request: by service, then by endpoint. A request for another service gets the
/// wrong-service route (a restartable NACK), an unknown endpoint the unknown-endpoint route (UNIMPLEMENTED), so
/// every request has a route and every route answers.
///
/// Thread-safe: routes added before ``freeze()`` are read without a lock afterwards; routes added later are
/// found through the locked table.
final class Router: Sendable {
    let service: String
    /// Handlers registered so far (guarded by its lock).
    private let routes = Mutex<[String: Route]>([:])
    /// The handlers as ``freeze()`` found them, read without a lock on every request. Written once, before the
    /// transport serves (so before any reader exists); readers load `frozen` (acquiring) first.
    @exclusivity(unchecked) private nonisolated(unsafe) var frozenRoutes: [String: Route] = [:]
    /// The same, as a list when it is short: comparing a few names (the transport hands out the same interned
    /// String for a repeated name, which compares at once) costs less than hashing one.
    @exclusivity(unchecked) private nonisolated(unsafe) var frozenList: [(name: String, route: Route)] = []
    private let frozen = Atomic<Bool>(false)
    let health: Route
    private let unknownEndpoint: Route
    private let wrongService: Route

    init(core: ServerCore, health: Route) {
        service = core.configuration.name
        self.health = health
        unknownEndpoint = Route(endpoint: "", kind: .unknownEndpoint(service: service), server: core, counted: false)
        wrongService = Route(endpoint: "", kind: .wrongService(served: service), server: core, counted: false)
    }

    func add(_ route: Route) {
        routes.withLock { $0[route.endpoint] = route }
    }

    /// The endpoints registered, sorted (without the health check).
    var endpoints: [String] { routes.withLock { Array($0.keys) }.sorted() }

    /// Publishes the routes registered so far for lock-free reads. Call once, before serving.
    func freeze() {
        frozenRoutes = routes.withLock { $0 }
        frozenList = frozenRoutes.count <= 16 ? frozenRoutes.map { (name: $0.key, route: $0.value) } : []
        frozen.store(true, ordering: .releasing)
    }

    /// The route of a request with `head`. A health check may name no service (the server as a whole).
    func route(_ head: RequestHead) -> Route {
        guard head.service == service else {
            return head.service.isEmpty && head.endpoint == Server.healthEndpoint ? health : wrongService
        }
        return route(endpoint: head.endpoint)
    }

    private func route(endpoint: String) -> Route {
        if frozen.load(ordering: .acquiring) {
            if !frozenList.isEmpty {
                for entry in frozenList where entry.name == endpoint { return entry.route }
            } else if let r = frozenRoutes[endpoint] {
                return r
            }
        }
        if let r = routes.withLock({ $0[endpoint] }) { return r }
        return endpoint == Server.healthEndpoint ? health : unknownEndpoint
    }
}
