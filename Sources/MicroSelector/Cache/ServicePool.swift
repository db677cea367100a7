import MicroCore
import Logging
import CoreMetrics
import Synchronization

/// The cached nodes of one service with everything selection keeps about them. Thread-safe: all state is
/// behind one mutex per service, held only for a pick or a mark (no allocation, no system call on the warm
/// path except reading the monotonic clock when needed).
final class ServicePool: Sendable {
    let name: String
    /// Guarded by its mutex.
    let state: Mutex<PoolState>
    /// Signalled after nodes were added or listed again, for calls waiting for a node.
    let changes = ChangeSignal()

    let logger: Logger
    /// `micro_selector_ejections_total{service}`.
    let ejections: Counter

    init(name: String, services: [Service], configuration: SelectorConfiguration, logger: Logger = Logger(label: "swift-micro.selector")) {
        self.name = name
        self.logger = logger
        ejections = Counter(label: "micro_selector_ejections_total", dimensions: [("service", name)])
        var s = PoolState(configuration: configuration)
        s.replace(with: services)
        state = Mutex(s)
    }

    /// Logs and counts that `node` left rotation after `outcome` (ejected, or held by the caller's breaker).
    func reportEjection(_ node: Node, outcome: Outcome) {
        ejections.increment()
        let why = if case .held = outcome { "its circuit breaker is open" } else { "it failed" }
        logger.notice("node ejected", metadata: ["service": "\(name)", "node": "\(node.id)", "address": "\(node.address)", "reason": "\(why)"])
    }

    /// Changes the state, then wakes the calls waiting for a node.
    func update(_ body: (inout PoolState) -> Void) {
        state.withLock { body(&$0) }
        changes.signal()
    }
}
