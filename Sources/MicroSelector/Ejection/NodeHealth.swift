internal import MicroCore
/// Outcomes of one node and its ejection state. Part of ``PoolState``, guarded by the pool's mutex.
struct NodeHealth {
    var consecutiveFailures = 0
    /// Calls and failures in the current success-rate window.
    var windowCalls = 0
    var windowFailures = 0
    /// Ejections in a row (the multiplier of the base time); back to 0 once a returned node stays in for
    /// the maximum ejection time.
    var ejections = 0
    /// Monotonic nanoseconds until which the node is out; 0: in rotation.
    var ejectedUntil: UInt64 = 0
    /// The ejection time has passed and one call (the probe) is out to it; its outcome decides.
    var probing = false
    /// When the node last came back (monotonic nanoseconds).
    var returnedAt: UInt64 = 0

    var isEjected: Bool { ejectedUntil != 0 }
}
