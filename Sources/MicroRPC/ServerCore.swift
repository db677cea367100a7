import Synchronization

/// What a server's routes share: its configuration and counters. Apart from ``Server`` so that routes do not
/// keep the server alive.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    /// Calls being handled (unary and streams).
    let inFlight = Atomic<Int>(0)
    /// Calls refused with NACK because of the concurrency limit.
    let refused = Atomic<Int>(0)
    /// Set when a graceful stop began: health reports NOT_SERVING.
    let draining = Atomic<Bool>(false)

    init(configuration: ServerConfiguration) { self.configuration = configuration }

    /// Counts a new call in; false (and nothing counted) above the concurrency limit.
    func admit() -> Bool {
        let now = inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        if now > configuration.maxConcurrentCalls {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            refused.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func callEnded() { inFlight.wrappingSubtract(1, ordering: .relaxed) }
}
