/// Values by stream id: the calls in flight on one connection. A connection's stream ids are consecutive and
/// only a window of them is in flight, so each id has one slot (the id, masked): no hash function, no probing.
/// The rare id whose slot an older call still holds (a straggler a whole table behind) goes to a small overflow
/// dictionary. Not thread-safe.
///
/// Stream id 0 is not a valid key (it marks an empty slot).
struct StreamTable<Value> {
    struct Entry {
        /// 0: empty.
        var key: UInt32
        var value: Value?
    }

    /// The slots. The capacity is 0 or a power of two, at least twice `count`. One array of entries (not keys and
    /// values apart): a mutation checks one buffer's uniqueness and touches one cache line.
    private var entries: [Entry] = []
    /// Entries whose slot was taken when they came.
    private var overflow: [UInt32: Value] = [:]
    private(set) var count = 0

    /// Tables that grew past this are given back when they empty.
    private static var retainedCapacity: Int { 1024 }

    init() {}

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func slot(_ key: UInt32) -> Int { Int(key) & (entries.count - 1) }

    subscript(key: UInt32) -> Value? {
        get {
            guard count > 0 else { return nil }
            let s = slot(key)
            let hit: Value?? = entries.withUnsafeBufferPointer { $0[s].key == key ? .some($0[s].value) : .none }
            if let hit { return hit }
            return overflow.isEmpty ? nil : overflow[key]
        }
        set {
            if let newValue { insert(key, newValue) } else { removeValue(forKey: key) }
        }
    }

    func contains(_ key: UInt32) -> Bool { self[key] != nil }

    /// Inserts or replaces the value for `key`.
    mutating func insert(_ key: UInt32, _ value: consuming Value) {
        precondition(key != 0, "stream id 0 is not a key")
        if (count + 1) * 2 > entries.count { resize(to: Swift.max(16, entries.count * 2)) }
        let s = slot(key)
        var pending = Optional(value)  // moved into the slot or the overflow, never copied
        // The slot in place (`s` is masked into the buffer): no bounds checks, one uniqueness check.
        let placed: StreamTablePlacement = entries.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress! + s
            if p.pointee.key == key {
                p.pointee.value = pending.take()
                return .replaced
            }
            if p.pointee.key == 0 {
                p.pointee.key = key
                p.pointee.value = pending.take()
                return .added
            }
            return .taken
        }
        switch placed {
        case .replaced:
            return
        case .added:
            // The key may sit in the overflow from when its slot was taken: the slot's copy wins, drop the other.
            if !overflow.isEmpty, overflow.removeValue(forKey: key) != nil { return }
        case .taken:
            if overflow.updateValue(pending.take()!, forKey: key) != nil { return }
        }
        count += 1
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt32) -> Value? {
        guard count > 0 else { return nil }
        let s = slot(key)
        var value: Value? = entries.withUnsafeMutableBufferPointer { b in
            let p = b.baseAddress! + s
            guard p.pointee.key == key else { return nil }
            p.pointee.key = 0
            return p.pointee.value.take()
        }
        if value == nil, !overflow.isEmpty { value = overflow.removeValue(forKey: key) }
        guard value != nil else { return nil }
        count -= 1
        if count == 0 && entries.count > Self.retainedCapacity { removeAll() }
        return value
    }

    /// The keys, in no particular order.
    var allKeys: [UInt32] { entries.compactMap { $0.key == 0 ? nil : $0.key } + overflow.keys }

    /// The values, in no particular order.
    var allValues: [Value] { entries.compactMap { $0.key == 0 ? nil : $0.value } + overflow.values }

    mutating func removeAll() {
        entries = []
        overflow = [:]
        count = 0
    }

    private mutating func resize(to capacity: Int) {
        var old = entries
        let oldOverflow = overflow
        entries = [Entry](repeating: Entry(key: 0, value: nil), count: capacity)
        overflow = [:]
        count = 0
        for i in old.indices where old[i].key != 0 {
            if let v = old[i].value.take() { insert(old[i].key, v) }
        }
        for (k, v) in oldOverflow { insert(k, v) }
    }
}

/// Where ``StreamTable/insert(_:_:)`` put a value in its slots.
private enum StreamTablePlacement { case replaced, added, taken }
