/// Deadlines of calls, earliest first: a binary min-heap in one array, so that a call with a deadline costs no
/// timer and no allocation of its own (one loop timer serves the heap's top). Entries of calls that ended are
/// left in place and skipped when they come up; the owner compacts the heap when such entries outnumber the
/// live ones, so its size stays within twice the calls in flight. Loop-confined.
struct DeadlineHeap<Key> {
    struct Entry {
        /// Loop time, in milliseconds.
        var at: UInt64
        /// What is due then (a stream id, a call).
        var key: Key
    }

    private(set) var entries: [Entry] = []

    var isEmpty: Bool { entries.isEmpty }
    var earliest: UInt64? { entries.first?.at }

    mutating func insert(at: UInt64, key: Key) {
        entries.append(Entry(at: at, key: key))
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[i].at < entries[parent].at else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    var count: Int { entries.count }

    /// Keeps only the entries `isLive` accepts, and restores heap order (O(n)).
    mutating func compact(_ isLive: (Entry) -> Bool) {
        entries.removeAll { !isLive($0) }
        var i = entries.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let n = entries.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && entries[l].at < entries[m].at { m = l }
            if r < n && entries[r].at < entries[m].at { m = r }
            if m == i { break }
            entries.swapAt(i, m)
            i = m
        }
    }

    /// Removes and returns the earliest entry if it is due at `now`.
    mutating func popDue(now: UInt64) -> Entry? {
        guard let top = entries.first, top.at <= now else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(0)
        }
        return top
    }

    mutating func removeAll() { entries.removeAll() }
}
