/// Values by stream id: an open-addressing table for the calls in flight on one connection. A connection's
/// stream ids are consecutive, so the id itself (masked) is the slot: no hash function, and neighbours do not
/// collide. Linear probing; deletion shifts the run back, so there are no tombstones. Not thread-safe.
///
/// Stream id 0 is not a valid key (it marks an empty slot).
struct StreamTable<Value> {
    /// 0: empty. The capacity is 0 or a power of two, at least twice `count`.
    private var keys: [UInt32] = []
    private var values: [Value?] = []
    private(set) var count = 0

    /// Tables that grew past this are given back when they empty.
    private static var retainedCapacity: Int { 1024 }

    init() {}

    var isEmpty: Bool { count == 0 }

    private func slot(of key: UInt32) -> Int? {
        guard count > 0 else { return nil }
        let mask = keys.count - 1
        var i = Int(key) & mask
        while true {
            let k = keys[i]
            if k == key { return i }
            if k == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    subscript(key: UInt32) -> Value? {
        get { slot(of: key).flatMap { values[$0] } }
        set {
            if let newValue { insert(key, newValue) } else { removeValue(forKey: key) }
        }
    }

    func contains(_ key: UInt32) -> Bool { slot(of: key) != nil }

    /// Inserts or replaces the value for `key`.
    mutating func insert(_ key: UInt32, _ value: Value) {
        precondition(key != 0, "stream id 0 is not a key")
        if (count + 1) * 2 > keys.count { resize(to: Swift.max(16, keys.count * 2)) }
        let mask = keys.count - 1
        var i = Int(key) & mask
        while true {
            let k = keys[i]
            if k == key {
                values[i] = value
                return
            }
            if k == 0 {
                keys[i] = key
                values[i] = value
                count += 1
                return
            }
            i = (i + 1) & mask
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt32) -> Value? {
        guard let found = slot(of: key) else { return nil }
        let value = values[found].take()
        keys[found] = 0
        count -= 1
        // Shift back the entries of the run after the hole that may live there.
        let mask = keys.count - 1
        var hole = found
        var j = (found + 1) & mask
        while keys[j] != 0 {
            let home = Int(keys[j]) & mask
            if (j - home) & mask >= (j - hole) & mask {
                keys[hole] = keys[j]
                values[hole] = values[j].take()
                keys[j] = 0
                hole = j
            }
            j = (j + 1) & mask
        }
        if count == 0 && keys.count > Self.retainedCapacity { removeAll() }
        return value
    }

    /// The keys, in no particular order.
    var allKeys: [UInt32] { keys.filter { $0 != 0 } }

    /// The values, in no particular order.
    var allValues: [Value] { values.compactMap { $0 } }

    mutating func removeAll() {
        keys = []
        values = []
        count = 0
    }

    private mutating func resize(to capacity: Int) {
        let oldKeys = keys
        var oldValues = values
        keys = [UInt32](repeating: 0, count: capacity)
        values = [Value?](repeating: nil, count: capacity)
        count = 0
        for i in oldKeys.indices where oldKeys[i] != 0 {
            if let v = oldValues[i].take() { insert(oldKeys[i], v) }
        }
    }
}
