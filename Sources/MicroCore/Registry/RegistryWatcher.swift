/// A stream of ``RegistryEvent``s from ``Registry/watch(_:)``. Iterate it once; ``stop()`` ends it (the
/// iteration then finishes normally). It ends with an error when the registry's watch breaks for good
/// (etcd's watcher reconnects on its own and only ends when stopped).
public struct RegistryWatcher: AsyncSequence, Sendable {
    public typealias Element = RegistryEvent
    public typealias Failure = any Error

    private let events: AsyncThrowingStream<RegistryEvent, any Error>
    private let onStop: @Sendable () -> Void

    /// For implementations: `events` is the stream, `onStop` releases what feeds it (and finishes the stream).
    public init(events: AsyncThrowingStream<RegistryEvent, any Error>, onStop: @escaping @Sendable () -> Void) {
        self.events = events
        self.onStop = onStop
    }

    public func stop() { onStop() }

    public func makeAsyncIterator() -> AsyncThrowingStream<RegistryEvent, any Error>.AsyncIterator {
        events.makeAsyncIterator()
    }
}
