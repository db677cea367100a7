import Synchronization

/// The receiving half of a stream: the transport yields parts (on its own thread), the application awaits
/// them with ``next()``. Thread-safe.
///
/// Flow control: each message taken is measured; once the bytes taken since the last grant reach
/// `creditThreshold`, `onCredit` is called with that count, so the transport can return credit to the
/// sender in one WINDOW frame rather than one per message.
///
/// Not promised: more than one concurrent consumer (a second `next()` while one waits fails with
/// `invalidState`).
public final class InboundQueue<Part: Sendable>: Sendable {
    struct State: ~Copyable {
        var items: [Part] = []
        var head = 0
        var waiter: CheckedContinuation<Part?, any Error>?
        var finished = false
        var failure: TransportError?
        var uncredited = 0
    }

    private enum Outcome { case wait, part(Part), end, fail(any Error), cancelled }

    private let state = Mutex(State())
    private let measure: @Sendable (Part) -> Int
    private let creditThreshold: Int
    private let onCredit: @Sendable (Int) -> Void
    private let onCancel: @Sendable () -> Void

    /// - Parameters:
    ///   - measure: the flow-controlled size of a part (0 for parts that are not).
    ///   - creditThreshold: bytes to take before `onCredit` is called.
    ///   - onCredit: called (on the consumer's thread) with the bytes taken since the last call.
    ///   - onCancel: called when the consuming task is cancelled while waiting.
    public init(
        measure: @escaping @Sendable (Part) -> Int = { _ in 0 },
        creditThreshold: Int = 1,
        onCredit: @escaping @Sendable (Int) -> Void = { _ in },
        onCancel: @escaping @Sendable () -> Void = {}
    ) {
        self.measure = measure
        self.creditThreshold = max(1, creditThreshold)
        self.onCredit = onCredit
        self.onCancel = onCancel
    }

    /// Adds a part. Returns false (dropping it) once the queue is finished.
    @_specialize(exported: true, where Part == ClientInboundPart)
    @_specialize(exported: true, where Part == ServerInboundPart)
    @discardableResult
    public func yield(_ part: Part) -> Bool {
        let waiter: CheckedContinuation<Part?, any Error>?? = state.withLock { s in
            if s.finished { return .none }
            if let w = s.waiter {
                s.waiter = nil
                return .some(w)
            }
            s.items.append(part)
            return .some(nil)
        }
        switch waiter {
        case .none: return false
        case .some(nil): return true
        case .some(let w?):
            taken(part)
            w.resume(returning: part)
            return true
        }
    }

    /// Ends the queue: after the buffered parts, ``next()`` returns nil, or throws `error` when given.
    /// An error discards parts not yet taken. Idempotent: the first call wins.
    @_specialize(exported: true, where Part == ClientInboundPart)
    @_specialize(exported: true, where Part == ServerInboundPart)
    public func finish(throwing error: TransportError? = nil) {
        let waiter: CheckedContinuation<Part?, any Error>? = state.withLock { s in
            if s.finished { return nil }
            s.finished = true
            s.failure = error
            if error != nil {
                s.items.removeAll()
                s.head = 0
            }
            let w = s.waiter
            s.waiter = nil
            return w
        }
        if let waiter {
            if let error { waiter.resume(throwing: error) } else { waiter.resume(returning: nil) }
        }
    }

    /// Whether ``finish(throwing:)`` was called.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// The next part; nil after a clean end. Throws the queue's error, `CancellationError` when the task
    /// is cancelled, or `invalidState` when another consumer is already waiting.
    @_specialize(exported: true, where Part == ClientInboundPart)
    @_specialize(exported: true, where Part == ServerInboundPart)
    public func next() async throws -> Part? {
        if let ready = try takeReady() { return ready }
        // The variant that inherits the caller's executor: `withTaskCancellationHandler` hops to its `isolation`
        // on entry and on return (two executor checks per wait, each taking the task's status-record lock under an
        // executor preference). Same handler semantics otherwise.
        return try await _unsafeInheritExecutor_withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Part?, any Error>) in
                let outcome: Outcome = state.withLock { s in
                    if let p = Self.popHead(&s) { return .part(p) }
                    if s.finished { return s.failure.map { .fail($0) } ?? .end }
                    if s.waiter != nil { return .fail(TransportError(.invalidState, "another task is already receiving")) }
                    if Task.isCancelled { return .cancelled }
                    s.waiter = cont
                    return .wait
                }
                switch outcome {
                case .wait: break
                case .part(let p): taken(p); cont.resume(returning: p)
                case .end: cont.resume(returning: nil)
                case .fail(let e): cont.resume(throwing: e)
                case .cancelled:
                    cont.resume(throwing: CancellationError())
                    onCancel()
                }
            }
        } onCancel: {
            let w = state.withLock { s in
                let w = s.waiter
                s.waiter = nil
                return w
            }
            if let w {
                w.resume(throwing: CancellationError())
                onCancel()
            }
        }
    }

    @_specialize(exported: true, where Part == ClientInboundPart)
    @_specialize(exported: true, where Part == ServerInboundPart)
    /// The oldest buffered part, if any; the storage is reset (keeping its capacity) once drained.
    private static func popHead(_ s: inout State) -> Part? {
        guard s.head < s.items.count else { return nil }
        let p = s.items[s.head]
        s.head += 1
        if s.head == s.items.count {
            s.items.removeAll(keepingCapacity: true)
            s.head = 0
        }
        return p
    }

    private func takeReady() throws -> Part?? {
        let r: Result<Part?, any Error>? = state.withLock { s in
            if let p = Self.popHead(&s) { return .success(p) }
            if s.finished {
                if let f = s.failure { return .failure(f) }
                return .success(nil)
            }
            return nil
        }
        guard let r else { return nil }
        let p = try r.get()
        if let p { taken(p) }
        return .some(p)
    }

    @_specialize(exported: true, where Part == ClientInboundPart)
    @_specialize(exported: true, where Part == ServerInboundPart)
    private func taken(_ part: Part) {
        let n = measure(part)
        guard n > 0 else { return }
        let grant: Int = state.withLock { s in
            s.uncredited += n
            if s.uncredited >= creditThreshold {
                defer { s.uncredited = 0 }
                return s.uncredited
            }
            return 0
        }
        if grant > 0 { onCredit(grant) }
    }
}
