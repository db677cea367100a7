internal import Synchronization

/// Objects by service and endpoint, each made once and kept for the table's lifetime: what a middleware keeps per
/// endpoint (metric handles, a rate limiter). Safe to share between threads.
///
/// Most calls name the endpoint the previous call named, so the entry found last is published in an atomic word:
/// a read that names it takes no lock, retains nothing and hashes nothing (an acquiring load, free on x86, and two
/// string comparisons, which for the interned or inline strings of the wire are comparisons of their bits). Other
/// reads take the mutex and hash the key, and publish what they found. On this machine a locked instruction costs
/// about 20 ns, and a mutex takes two: that is what the published entry saves, twice per call where a middleware
/// looks at the call before and after its handler.
///
/// Entries are never removed, so the published one cannot be freed under a reader. Not promised: bounded memory
/// when callers name unboundedly many keys; use it only for keys a server serves or a client is configured with.
final class EndpointTable<Value: AnyObject & Sendable>: Sendable {
    final class Entry: Sendable {
        let service: String
        let endpoint: String
        let value: Value

        init(service: String, endpoint: String, value: Value) {
            self.service = service
            self.endpoint = endpoint
            self.value = value
        }
    }

    private struct Key: Hashable {
        var service: String
        var endpoint: String
    }

    /// The entry found last, as the bits of an unretained reference (0: none yet). The entry is kept alive by
    /// `entries`. Written with release after the entry is in `entries`, read with acquire.
    private let last = Atomic<UInt>(0)
    /// Every entry; guarded by its mutex.
    private let entries = Mutex<[Key: Entry]>([:])
    /// Makes the value of a service and endpoint on first use (outside the lock: a metrics factory may take locks
    /// of its own; when two threads make one at once, the first one stored wins). Given once, so that a call
    /// captures nothing for it.
    private let make: @Sendable (_ service: String, _ endpoint: String) -> Value

    init(make: @escaping @Sendable (_ service: String, _ endpoint: String) -> Value) {
        self.make = make
    }

    /// `body` with the value of `service` and `endpoint`.
    @inline(__always)
    func withValue<R>(_ service: String, _ endpoint: String, _ body: (Value) -> R) -> R {
        let bits = last.load(ordering: .acquiring)
        if bits != 0 {
            let found: R? = Unmanaged<Entry>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)._withUnsafeGuaranteedRef { entry in
                guard entry.endpoint == endpoint, entry.service == service else { return nil }
                return body(entry.value)
            }
            if let found { return found }
        }
        return body(lookUp(service, endpoint).value)
    }

    /// The entry of a key that is not the published one: found or made, then published.
    @inline(never)
    private func lookUp(_ service: String, _ endpoint: String) -> Entry {
        let key = Key(service: service, endpoint: endpoint)
        let entry = entries.withLock { $0[key] } ?? {
            let made = Entry(service: service, endpoint: endpoint, value: make(service, endpoint))
            return entries.withLock { entries in
                if let existing = entries[key] { return existing }
                entries[key] = made
                return made
            }
        }()
        last.store(UInt(bitPattern: Unmanaged.passUnretained(entry).toOpaque()), ordering: .releasing)
        return entry
    }

    /// The number of entries made.
    var count: Int { entries.withLock { $0.count } }
}
