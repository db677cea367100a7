import Synchronization

/// The server's connection limits: in all, and per client IP address. Shared by the loops; consulted once per
/// accepted connection and once per close. Thread-safe (one mutex).
final class ConnectionLimiter: Sendable {
    let maxConnections: Int
    let maxPerAddress: Int

    private struct Counts: ~Copyable {
        var total = 0
        var byAddress: [String: Int] = [:]
    }
    /// Guarded by its mutex.
    private let counts = Mutex(Counts())

    init(maxConnections: Int, maxPerAddress: Int) {
        self.maxConnections = maxConnections <= 0 ? .max : maxConnections
        self.maxPerAddress = maxPerAddress <= 0 ? .max : maxPerAddress
    }

    /// Whether any limit is set (without one, nothing is counted).
    var isLimiting: Bool { maxConnections != .max || maxPerAddress != .max }

    /// Counts a connection from `address`, or says why it is refused (nothing counted).
    func admit(_ address: String) -> String? {
        counts.withLock { c in
            if c.total >= maxConnections { return "the server holds its limit of \(maxConnections) connections" }
            let fromHere = c.byAddress[address, default: 0]
            if fromHere >= maxPerAddress { return "\(address) holds its limit of \(maxPerAddress) connections" }
            c.total += 1
            c.byAddress[address] = fromHere + 1
            return nil
        }
    }

    /// Uncounts an admitted connection.
    func release(_ address: String) {
        counts.withLock { c in
            c.total -= 1
            if let n = c.byAddress[address] {
                if n <= 1 { c.byAddress[address] = nil } else { c.byAddress[address] = n - 1 }
            }
        }
    }
}
