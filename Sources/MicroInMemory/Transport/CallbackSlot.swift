import Synchronization

/// A callback that is set after the objects that call it exist (breaking init-order cycles). Thread-safe.
final class CallbackSlot: Sendable {
    private let callback = Mutex<(@Sendable () -> Void)?>(nil)

    func set(_ body: @escaping @Sendable () -> Void) { callback.withLock { $0 = body } }

    func fire() { callback.withLock { $0 }?() }
}
