import Glibc

/// SIGTERM and SIGINT as an event: ``install()`` first thing in `main`, ``wait()`` once serving.
///
/// A `sigaction` handler writes a byte to a pipe (the self-pipe trick, async-signal-safe) and a thread of its own
/// reads it. Unlike a Dispatch signal source, this needs no particular signal mask in any thread, and a signal that
/// arrives before ``wait()`` is kept in the pipe: a service stopped right after it announced itself still
/// deregisters.
struct AsyncSignals: Sendable {
    /// The pipe the handler writes to. Made before the handler is installed; never changes.
    private static let pipeFDs: (read: Int32, write: Int32) = {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return (-1, -1) }
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }()

    static func install() -> AsyncSignals {
        precondition(pipeFDs.read >= 0, "cannot make the signal pipe")
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            // The interrupted thread must find errno as it left it.
            let saved = errno
            var byte: UInt8 = 1
            _ = write(AsyncSignals.pipeFDs.write, &byte, 1)
            errno = saved
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT] {
            sigaction(s, &action, nil)
            sigaddset(&set, s)
        }
        // Whatever mask we inherited, this thread (and every thread started after it) can take them.
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        return AsyncSignals()
    }

    /// Returns once SIGTERM or SIGINT arrived (or had arrived since ``install()``).
    func wait() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let box = Unmanaged.passRetained(Waiter(done)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                let waiter = Unmanaged<Waiter>.fromOpaque(raw!).takeRetainedValue()
                var byte: UInt8 = 0
                while read(AsyncSignals.pipeFDs.read, &byte, 1) < 0 && errno == EINTR {}
                waiter.done.resume()
                return nil
            }, box)
            if rc == 0 {
                pthread_detach(thread)
            } else {
                Unmanaged<Waiter>.fromOpaque(box).release()
                done.resume()
            }
        }
    }
}

private final class Waiter: @unchecked Sendable {
    let done: CheckedContinuation<Void, Never>
    init(_ done: CheckedContinuation<Void, Never>) { self.done = done }
}
