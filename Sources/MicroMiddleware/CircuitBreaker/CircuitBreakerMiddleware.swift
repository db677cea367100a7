import MicroCore
public import MicroRPC
public import Logging
import CoreMetrics
import Synchronization

/// A circuit breaker per node and per service (client middleware).
///
/// - Per node, around each attempt: while a node's breaker is open, attempts to it fail at once with
///   ``CircuitOpenError`` as the cause; the client then tells its selector to skip the node for the open time and
///   picks another node, without spending a retry. After the open time a few probes go through (half-open); they
///   close it or open it again for longer.
/// - Per service, around each logical call: while the service's breaker is open, calls fail at once with
///   `unavailable` (cause ``CircuitOpenError`` with no node), nothing is sent.
///
/// What counts as a failure: for a node, an outcome that counts against it (``RPCError/countsAgainstNode``: a
/// transport failure, a NACK, UNAVAILABLE, RESOURCE_EXHAUSTED); for a service, the same or DEADLINE_EXCEEDED of the
/// whole call. Application errors are successes; cancelled calls count for nothing.
///
/// Changes of state are logged (warning when a breaker opens) and reported as the gauge
/// `micro_circuit_breaker_state` (0 closed, 1 half-open, 2 open) labelled by service and node.
///
/// Synchronous (``ClientMiddleware/callsSynchronously``): its hooks run before and after, with no async level.
///
/// Thread-safe: the states are guarded by one mutex, taken twice per attempt (admit, record) while any breaker has
/// state; while none has (no node failed within the window), an attempt takes no lock and reads no clock. A breaker
/// that closed again and whose failures left the window is forgotten. Not promised: that a node's breaker outlives
/// the node: above `maxNodes` breakers, closed ones are forgotten.
public struct CircuitBreakerMiddleware: ClientMiddleware {
    /// What a breaker is for.
    public enum Scope: Sendable, Hashable {
        case node
        case service
    }

    public struct Configuration: Sendable {
        /// The breakers of nodes; nil: none.
        public var node: CircuitBreakerConfiguration? = CircuitBreakerConfiguration()
        /// The breakers of services; nil: none.
        public var service: CircuitBreakerConfiguration? = nil
        /// Breakers kept at most (closed ones beyond it are forgotten).
        public var maxNodes = 10_000

        public init() {}
    }

    let breakers: Breakers
    public var configuration: Configuration { breakers.configuration }

    public init(_ configuration: Configuration = Configuration(), logger: Logger = Logger(label: "swift-micro.breaker")) {
        breakers = Breakers(configuration: configuration, logger: logger)
    }

    /// The phase of a node's (or with `node` nil, the service's) breaker; closed for one never used.
    public func phase(service: String, node: String?) -> BreakerState.Phase {
        breakers.phase(Breakers.key(service, node))
    }

    /// Synchronous: admitted before, recorded after, with no async level of its own. Whether an attempt went
    /// through as a half-open probe is found again after it by its start time (``ClientAttempt/startedAt``).
    public var callsSynchronously: Bool { true }

    public func willCall(_ call: ClientCall) throws {
        guard breakers.configuration.service != nil else { return }
        let key = Breakers.key(call.service, nil)
        if case .reject(let after) = breakers.admit(key, scope: .service, startedAt: call.startedAt.nanoseconds) {
            throw CircuitOpenError(service: call.service, node: nil, retryAfter: .nanoseconds(after)).rpcError
        }
    }

    public func didCall(_ call: ClientCall, outcome: Result<ClientOutput, any Error>) {
        guard breakers.configuration.service != nil else { return }
        let success: Bool?  // nil: no outcome (cancelled, or refused by an open breaker)
        switch outcome {
        case .success: success = true
        case .failure(let e as RPCError):
            if e.cause is CircuitOpenError || (e.cause as? TransportError)?.code == .cancelled || e.code == .cancelled {
                success = nil
            } else {
                success = !(e.countsAgainstNode || e.code == .deadlineExceeded)
            }
        case .failure: success = nil
        }
        breakers.finish(Breakers.key(call.service, nil), scope: .service, startedAt: call.startedAt.nanoseconds, success: success)
    }

    public func willAttempt(_ attempt: ClientAttempt) throws {
        guard breakers.configuration.node != nil else { return }
        let key = Breakers.key(attempt.service, attempt.nodeName)
        if case .reject(let after) = breakers.admit(key, scope: .node, startedAt: attempt.startedAt.nanoseconds) {
            // Held at least a little while: a half-open breaker whose probes are out says "no estimate" (0).
            throw CircuitOpenError(service: attempt.service, node: attempt.nodeName,
                                   retryAfter: .nanoseconds(max(after, 10_000_000))).rpcError
        }
    }

    public func didAttempt(_ attempt: ClientAttempt, outcome: Result<ClientOutput, any Error>) {
        guard breakers.configuration.node != nil else { return }
        let success: Bool?  // nil: no outcome (cancelled)
        switch outcome {
        case .success: success = true
        case .failure(let e as RPCError):
            if e.code == .cancelled || (e.cause as? TransportError)?.code == .cancelled {
                success = nil
            } else {
                success = !e.countsAgainstNode
            }
        case .failure: success = nil
        }
        breakers.finish(Breakers.key(attempt.service, attempt.nodeName), scope: .node,
                        startedAt: attempt.startedAt.nanoseconds, success: success)
    }
}

extension CircuitBreakerMiddleware {
    /// The breakers by key, behind one mutex. A class so that copies of the middleware share them.
    final class Breakers: Sendable {
        struct Key: Hashable, Sendable {
            var service: String
            var node: String?
        }

        let configuration: Configuration
        let logger: Logger
        /// Guarded by its mutex.
        private let states = Mutex<[Key: BreakerState]>([:])
        /// How many states `states` holds, written under its mutex. While it is 0 (every node healthy, the usual
        /// case), admitting and recording a success need neither the mutex nor a clock reading. Read relaxed: an
        /// attempt admitted just as another one's failure creates the first state is one that began a moment
        /// earlier.
        private let tracked = Atomic<Int>(0)
        /// The start times of the attempts (or calls) admitted as probes and not finished, by key. Guarded by its
        /// mutex, which is taken only while a breaker is half-open or a probe is out.
        private let probeStarts = Mutex<[Key: [Int64]]>([:])
        /// How many start times `probeStarts` holds, written under its mutex. Read relaxed: a call's own probe was
        /// counted before the call began (same task), others do not matter to it.
        private let probesOut = Atomic<Int>(0)

        init(configuration: Configuration, logger: Logger) {
            self.configuration = configuration
            self.logger = logger
        }

        static func key(_ service: String, _ node: String?) -> Key { Key(service: service, node: node) }

        func phase(_ key: Key) -> BreakerState.Phase { states.withLock { $0[key]?.phase ?? .closed } }

        /// The number of breakers with state (the others are closed and clean).
        var count: Int { states.withLock { $0.count } }

        func admit(_ key: Key, scope: Scope) -> BreakerState.Decision {
            if tracked.load(ordering: .relaxed) == 0 { return .allow }
            let (decision, began) = states.withLock { states -> (BreakerState.Decision, Bool) in
                guard var state = states[key] else { return (.allow, false) }
                let before = state.phase
                let d = state.admit(now: Timestamp.now.nanoseconds)
                let began = before == .open && d == .probe
                states[key] = state
                return (d, began)
            }
            if began { report(key, BreakerState.Transition(from: .open, to: .halfOpen)) }
            return decision
        }

        func record(_ key: Key, scope: Scope, success: Bool, probe: Bool) {
            // Healthy and never failed (or no longer failing): no state kept.
            if success && !probe && tracked.load(ordering: .relaxed) == 0 { return }
            let transition = states.withLock { states -> BreakerState.Transition? in
                if success && !probe && states[key] == nil { return nil }
                let now = Timestamp.now.nanoseconds
                defer { tracked.store(states.count, ordering: .relaxed) }
                if states[key] == nil {
                    if states.count >= configuration.maxNodes { states = states.filter { $0.value.phase != .closed } }
                    guard let c = scope == .node ? configuration.node : configuration.service else { return nil }
                    states[key] = BreakerState(configuration: c)
                }
                let transition = states[key]!.record(success: success, probe: probe, now: now)
                // A breaker back to closed whose failures have left the window is forgotten, so that a healthy
                // client goes back to the path without the mutex.
                if success && transition == nil && states[key]!.isClean(now: now) { states[key] = nil }
                return transition
            }
            if let transition { report(key, transition) }
        }

        /// ``admit(_:scope:)`` for a call or attempt that began at `startedAt`; a probe is remembered by it.
        func admit(_ key: Key, scope: Scope, startedAt: Int64) -> BreakerState.Decision {
            let decision = admit(key, scope: scope)
            if decision == .probe {
                probeStarts.withLock { starts in
                    starts[key, default: []].append(startedAt)
                    probesOut.add(1, ordering: .relaxed)
                }
            }
            return decision
        }

        /// The end of a call or attempt admitted with ``admit(_:scope:startedAt:)``: records its outcome (nil: it
        /// had none, e.g. it was cancelled), as a probe when it was admitted as one.
        func finish(_ key: Key, scope: Scope, startedAt: Int64, success: Bool?) {
            let probe = takeProbe(key, startedAt: startedAt)
            if let success {
                record(key, scope: scope, success: success, probe: probe)
            } else if probe {
                cancelProbe(key)
            }
        }

        private func takeProbe(_ key: Key, startedAt: Int64) -> Bool {
            if probesOut.load(ordering: .relaxed) == 0 { return false }
            return probeStarts.withLock { starts in
                guard var list = starts[key], let i = list.firstIndex(of: startedAt) else { return false }
                list.remove(at: i)
                starts[key] = list.isEmpty ? nil : list
                probesOut.subtract(1, ordering: .relaxed)
                return true
            }
        }

        func cancelProbe(_ key: Key) {
            states.withLock { states in states[key]?.cancelProbe() }
        }

        private func report(_ key: Key, _ t: BreakerState.Transition) {
            let node = key.node ?? "*"
            let metadata: Logger.Metadata = ["service": "\(key.service)", "node": "\(node)", "from": "\(t.from)", "to": "\(t.to)"]
            if t.to == .open {
                logger.warning("circuit breaker opened", metadata: metadata)
            } else {
                logger.info("circuit breaker changed", metadata: metadata)
            }
            let value: Double = switch t.to {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
            MetricsSystem.factory.makeMeter(label: "micro_circuit_breaker_state",
                                            dimensions: [("service", key.service), ("node", node)]).set(value)
        }
    }
}
