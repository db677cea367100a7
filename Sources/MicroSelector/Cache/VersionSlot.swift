import MicroCore

/// A cached version of the service: its metadata and endpoints (nodes live in ``PoolState/nodes``).
struct VersionSlot {
    var service: Service
    /// Smooth weighted round robin state for canary splits.
    var canaryCurrent = 0
    /// Nodes registered with this version (a version without nodes takes no part in canary splits).
    var nodeCount = 0
}
