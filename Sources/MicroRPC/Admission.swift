internal import MicroCore
import Synchronization

/// The server's concurrency limit: counts calls in when their handler starts and out when it returns, in one
/// place (``run(_:)`` for streams, ``tryEnter()``/``leave()`` paired within one function for unary calls). A
/// call above the limit is not run: the caller gets a restartable NACK and retries on another node.
///
/// Thread-safe (atomics). Not promised: an exact limit under a burst from many threads; a call may briefly see
/// the count one above the limit and be refused when it was the last to fit.
final class Admission: Sendable {
    let limit: Int
    private let inFlightCount = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Calls being handled now.
    var inFlight: Int { inFlightCount.load(ordering: .relaxed) }
    /// Calls refused because of the limit, since the start.
    var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Counts a call in; false (and nothing counted) at the limit. Pair with ``leave()``.
    @inline(__always)
    func tryEnter() -> Bool {
        if inFlightCount.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            inFlightCount.wrappingSubtract(1, ordering: .relaxed)
            refusedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        return true
    }

    @inline(__always)
    func leave() { inFlightCount.wrappingSubtract(1, ordering: .relaxed) }

    /// Runs `body` counted in, or returns false without running it at the limit.
    func run(_ body: () async -> Void) async -> Bool {
        guard tryEnter() else { return false }
        defer { leave() }
        await body()
        return true
    }
}
