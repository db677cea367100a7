/// A first-in first-out queue that moves its elements in and out: queueing copies nothing and touches no
/// reference count (the calls waiting for a ``UnaryWorkerPool`` worker). Not thread-safe.
struct RingQueue<Element: ~Copyable>: ~Copyable {
    private var slots: UnsafeMutablePointer<Element>
    /// A power of two.
    private var capacity: Int
    private var start = 0
    private(set) var count = 0

    /// Capacity kept after the queue empties; a larger buffer (after a burst) is given back then.
    private let retainedCapacity: Int

    /// `capacity` and `retainedCapacity` are rounded up to powers of two.
    init(capacity: Int = 64, retainedCapacity: Int = 256) {
        self.capacity = max(1, capacity).nextPowerOfTwo
        self.retainedCapacity = max(self.capacity, max(1, retainedCapacity).nextPowerOfTwo)
        slots = .allocate(capacity: self.capacity)
    }

    deinit {
        for i in 0..<count { (slots + ((start + i) & (capacity - 1))).deinitialize(count: 1) }
        slots.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ call: consuming Element) {
        if count == capacity { resize(to: capacity * 2) }
        (slots + ((start + count) & (capacity - 1))).initialize(to: call)
        count += 1
    }

    mutating func popFirst() -> Element? {
        guard count > 0 else { return nil }
        let call = (slots + start).move()
        start = (start + 1) & (capacity - 1)
        count -= 1
        if count == 0 {
            start = 0
            if capacity > retainedCapacity { resize(to: retainedCapacity) }
        }
        return call
    }

    /// Calls `body` with each element in place, oldest first, until it returns true.
    mutating func updateEach(_ body: (inout Element) -> Bool) {
        for i in 0..<count where body(&(slots + ((start + i) & (capacity - 1))).pointee) { return }
    }

    /// Moves every call out, oldest first.
    mutating func removeAll(_ body: (consuming Element) -> Void) {
        while let call = popFirst() { body(call) }
    }

    private mutating func resize(to newCapacity: Int) {
        let fresh = UnsafeMutablePointer<Element>.allocate(capacity: newCapacity)
        for i in 0..<count { (fresh + i).moveInitialize(from: slots + ((start + i) & (capacity - 1)), count: 1) }
        slots.deallocate()
        slots = fresh
        capacity = newCapacity
        start = 0
    }
}

extension Int {
    /// The smallest power of two at least `self` (which must be positive).
    fileprivate var nextPowerOfTwo: Int { self <= 1 ? 1 : 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount) }
}
