import Dispatch
import Glibc

/// Waits for SIGTERM or SIGINT (through Dispatch signal sources, so the default action is off).
struct AsyncSignals {
    func wait() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let box = SignalSources(done)
            box.start()
        }
    }
}

private final class SignalSources: @unchecked Sendable {
    let done: CheckedContinuation<Void, Never>
    var sources: [any DispatchSourceSignal] = []
    var fired = false
    let queue = DispatchQueue(label: "signals")

    init(_ done: CheckedContinuation<Void, Never>) { self.done = done }

    func start() {
        queue.sync {
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
                s.setEventHandler { [self] in
                    guard !fired else { return }
                    fired = true
                    for s in sources { s.cancel() }
                    done.resume()
                }
                s.resume()
                sources.append(s)
            }
        }
    }
}
