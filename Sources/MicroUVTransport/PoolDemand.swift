/// Whether callers wait for a stream of a pool: a flag the pool sets and its connections read. Loop-confined (the
/// pool's loop).
final class PoolDemand: @unchecked Sendable {
    var callersWaiting = false
}
