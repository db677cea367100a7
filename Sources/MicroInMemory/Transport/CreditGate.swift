internal import MicroCore
import Synchronization

/// Flow-control credit for one direction of an in-memory stream, with the wire protocol's rule: a sender may
/// send while the window is positive, and the window may go negative by the last message. Waiters are served
/// in order.
final class CreditGate: Sendable {
    struct Waiter {
        var id: UInt64
        var bytes: Int
        var continuation: CheckedContinuation<Void, any Error>
    }
    struct State: ~Copyable {
        var window: Int
        var waiters: [Waiter] = []
        var failure: TransportError?
        var nextID: UInt64 = 0
    }
    private let state: Mutex<State>

    init(window: Int) { state = Mutex(State(window: window)) }

    /// Waits until the window is positive (and earlier waiters are served), then takes `bytes` from it.
    func acquire(_ bytes: Int) async throws(TransportError) {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
                    let result: Result<Void, TransportError>? = state.withLock { s in
                        if let f = s.failure { return .failure(f) }
                        if Task.isCancelled { return .failure(TransportError(.cancelled, "the sending task was cancelled")) }
                        if s.window > 0 && s.waiters.isEmpty {
                            s.window -= bytes
                            return .success(())
                        }
                        s.waiters.append(Waiter(id: id, bytes: bytes, continuation: cont))
                        return nil
                    }
                    if let result { cont.resume(with: result.mapError { $0 as any Error }) }
                }
            } onCancel: {
                let waiter: Waiter? = state.withLock { s in
                    guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                    return s.waiters.remove(at: i)
                }
                waiter?.continuation.resume(throwing: TransportError(.cancelled, "the sending task was cancelled"))
            }
        } catch let e as TransportError {
            throw e
        } catch {
            throw TransportError(.cancelled, "\(error)")
        }
    }

    /// Returns credit and wakes waiters, in order, while the window is positive.
    func grant(_ bytes: Int) {
        let ready: [Waiter] = state.withLock { s in
            s.window += bytes
            var ready: [Waiter] = []
            while s.window > 0 && !s.waiters.isEmpty {
                let w = s.waiters.removeFirst()
                s.window -= w.bytes
                ready.append(w)
            }
            return ready
        }
        for w in ready { w.continuation.resume() }
    }

    /// Fails every waiter and every later acquire.
    func fail(_ error: TransportError) {
        let waiters: [Waiter] = state.withLock { s in
            if s.failure == nil { s.failure = error }
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.continuation.resume(throwing: error) }
    }

    var window: Int { state.withLock { $0.window } }
}
