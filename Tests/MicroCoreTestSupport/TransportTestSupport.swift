public import MicroCore
import Synchronization
public import Testing

/// Thrown by ``withTimeout(seconds:_:sourceLocation:_:)`` when the work did not finish in time.
public struct TimeoutError: Error, CustomStringConvertible {
    public var label: String
    public var seconds: Double
    public var sourceLocation: SourceLocation
    public var description: String { "\(label) timed out after \(seconds) s (\(sourceLocation))" }
}

/// A lock-protected value that tests share with their tasks.
public final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    public init(_ value: Value) { mutex = Mutex(value) }
    public var value: Value { mutex.withLock { $0 } }
    @discardableResult
    public func update<R: Sendable>(_ body: (inout Value) -> R) -> R {
        mutex.withLock { body(&$0) }
    }
}

extension Locked where Value == Int {
    @discardableResult public func increment() -> Int { update { $0 += 1; return $0 } }
}

extension Locked {
    public func append<E: Sendable>(_ e: E) where Value == [E] { update { $0.append(e) } }
}

/// Resumes a continuation once; later attempts are ignored.
private final class Once<T: Sendable>: Sendable {
    private let cont = Mutex<CheckedContinuation<T, any Error>?>(nil)
    func set(_ c: CheckedContinuation<T, any Error>) { cont.withLock { $0 = c } }
    @discardableResult
    func resume(_ r: Result<T, any Error>) -> Bool {
        guard let c = cont.withLock({ s -> CheckedContinuation<T, any Error>? in defer { s = nil }; return s }) else { return false }
        c.resume(with: r)
        return true
    }
}

/// Runs `body` in a task of its own and returns its result, or throws ``TimeoutError`` after `seconds`.
///
/// Unlike a task group, this does not wait for `body` after the timeout (it is cancelled and abandoned), so a
/// test can never hang, even when the work under test ignores cancellation.
public func withTimeout<T: Sendable>(
    seconds: Double = 5,
    _ label: String = "operation",
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = Once<T>()
    return try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
        once.set(cont)
        let work = Task {
            do { once.resume(.success(try await body())) } catch { once.resume(.failure(error)) }
        }
        Task {
            // Ends early (without a timeout) once the work is done and nothing waits any more.
            let step = 0.01
            var waited = 0.0
            while waited < seconds {
                try? await Task.sleep(for: .seconds(step))
                waited += step
                if !once.pending { return }
            }
            if once.resume(.failure(TimeoutError(label: label, seconds: seconds, sourceLocation: sourceLocation))) {
                work.cancel()
            }
        }
    }
}

private extension Once {
    var pending: Bool { cont.withLock { $0 != nil } }
}

/// Polls `condition` until it holds or `seconds` pass; returns whether it held.
public func eventually(seconds: Double = 5, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

/// A one-shot signal: ``wait()`` returns once ``fire()`` was called (before or after).
public final class Signal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    public init() {}

    public func fire() {
        let waiters = state.withLock { s in
            s.fired = true
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    public var isFired: Bool { state.withLock { $0.fired } }

    /// Not cancellable: always bound it with ``withTimeout(seconds:_:sourceLocation:_:)``.
    public func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let fired = state.withLock { s in
                if s.fired { return true }
                s.waiters.append(c)
                return false
            }
            if fired { c.resume() }
        }
    }
}

/// Sleeps without throwing (cancellation ends the sleep early).
public func pause(milliseconds: Int) async { try? await Task.sleep(for: .milliseconds(milliseconds)) }

/// The code of a thrown TransportError, or nil for any other error.
public func transportCode(_ error: any Error) -> TransportError.Code? { (error as? TransportError)?.code }

extension UInt32 {
    public var bytes: [UInt8] { withUnsafeBytes(of: littleEndian) { Array($0) } }
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 else { return nil }
        self = bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
    }
}
