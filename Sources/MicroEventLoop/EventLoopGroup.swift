import Glibc
import Synchronization

/// A fixed set of event loops, one thread each. Connections are spread over its loops.
///
/// Thread-safe. Call ``shutdownGracefully()`` before dropping the last reference; the loops' threads
/// run until then.
public final class EventLoopGroup: Sendable {
    public let loops: [EventLoop]
    private let nextIndex = Atomic<Int>(0)

    /// Creates `threads` loops (default: one per core).
    public init(threads: Int = EventLoopGroup.coreCount) {
        precondition(threads > 0, "an event-loop group needs at least one loop")
        loops = (0..<threads).map { EventLoop(index: $0) }
    }

    /// The number of cores the process may run on.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The next loop, round robin. Thread-safe.
    public func next() -> EventLoop {
        let i = nextIndex.add(1, ordering: .relaxed).oldValue
        return loops[i % loops.count]
    }

    /// The loop whose thread is the caller's, if any.
    public var currentLoop: EventLoop? { loops.first { $0.inEventLoop } }

    /// Shuts every loop down (closing all of its handles) and joins their threads. Returns true when every
    /// loop closed clean (`uv_loop_close` returned 0).
    @discardableResult
    public func shutdownGracefully() -> Bool {
        var clean = true
        for loop in loops where loop.shutdownGracefully() != 0 { clean = false }
        return clean
    }

    /// ``shutdownGracefully()`` from async code: the joining blocks a thread of its own, not one of the
    /// cooperative pool (nor a loop's). Must not be awaited on one of this group's loops.
    @discardableResult
    public func shutdown() async -> Bool {
        await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            var thread = pthread_t()
            let box = Unmanaged.passRetained(ShutdownJob(group: self, done: done)).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<ShutdownJob>.fromOpaque(raw!).takeRetainedValue()
                job.done.resume(returning: job.group.shutdownGracefully())
                return nil
            }, box)
            if rc == 0 {
                pthread_detach(thread)
            } else {
                let job = Unmanaged<ShutdownJob>.fromOpaque(box).takeRetainedValue()
                job.done.resume(returning: job.group.shutdownGracefully())
            }
        }
    }
}

private final class ShutdownJob: Sendable {
    let group: EventLoopGroup
    let done: CheckedContinuation<Bool, Never>
    init(group: EventLoopGroup, done: CheckedContinuation<Bool, Never>) {
        self.group = group
        self.done = done
    }
}
