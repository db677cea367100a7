/// Values by stream id: the calls in flight on one connection. A connection's stream ids are consecutive and
/// only a window of them is in flight, so each id has one slot (the id, masked): no hash function, no probing.
/// The rare id whose slot an older call still holds (a straggler a whole table behind) goes to a small overflow
/// dictionary. Not thread-safe.
///
/// Stream id 0 is not a valid key (it marks an empty slot).
struct StreamTable<Value> {
    /// 0: empty. The capacity is 0 or a power of two, at least twice `count`.
    private var keys: [UInt32] = []
    private var values: [Value?] = []
    /// Entries whose slot was taken when they came.
    private var overflow: [UInt32: Value] = [:]
    private(set) var count = 0

    /// Tables that grew past this are given back when they empty.
    private static var retainedCapacity: Int { 1024 }

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func slot(_ key: UInt32) -> Int { Int(key) & (keys.count - 1) }

    subscript(key: UInt32) -> Value? {
        get {
            guard count > 0 else { return nil }
            let s = slot(key)
            if keys[s] == key { return values[s] }
            return overflow.isEmpty ? nil : overflow[key]
        }
        set {
            if let newValue { insert(key, newValue) } else { removeValue(forKey: key) }
        }
    }

    func contains(_ key: UInt32) -> Bool { self[key] != nil }

    /// Inserts or replaces the value for `key`.
    mutating func insert(_ key: UInt32, _ value: Value) {
        precondition(key != 0, "stream id 0 is not a key")
        if (count + 1) * 2 > keys.count { resize(to: Swift.max(16, keys.count * 2)) }
        let s = slot(key)
        if keys[s] == key {
            values[s] = value
            return
        }
        if !overflow.isEmpty, overflow[key] != nil {
            overflow[key] = value
            return
        }
        if keys[s] == 0 {
            keys[s] = key
            values[s] = value
        } else {
            overflow[key] = value
        }
        count += 1
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt32) -> Value? {
        guard count > 0 else { return nil }
        let s = slot(key)
        let value: Value?
        if keys[s] == key {
            keys[s] = 0
            value = values[s].take()
        } else if !overflow.isEmpty {
            value = overflow.removeValue(forKey: key)
        } else {
            value = nil
        }
        guard value != nil else { return nil }
        count -= 1
        if count == 0 && keys.count > Self.retainedCapacity { removeAll() }
        return value
    }

    /// The keys, in no particular order.
    var allKeys: [UInt32] { keys.filter { $0 != 0 } + overflow.keys }

    /// The values, in no particular order.
    var allValues: [Value] { values.compactMap { $0 } + overflow.values }

    mutating func removeAll() {
        keys = []
        values = []
        overflow = [:]
        count = 0
    }

    private mutating func resize(to capacity: Int) {
        let oldKeys = keys
        var oldValues = values
        let oldOverflow = overflow
        keys = [UInt32](repeating: 0, count: capacity)
        values = [Value?](repeating: nil, count: capacity)
        overflow = [:]
        count = 0
        for i in oldKeys.indices where oldKeys[i] != 0 {
            if let v = oldValues[i].take() { insert(oldKeys[i], v) }
        }
        for (k, v) in oldOverflow { insert(k, v) }
    }
}
