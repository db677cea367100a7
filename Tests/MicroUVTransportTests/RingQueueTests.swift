@testable import MicroUVTransport
import Synchronization
import Testing

@Suite("RingQueue")
struct RingQueueTests {
    /// Counts the live instances, so that a lost or doubly freed element shows.
    final class Tracked {
        static let live = Atomic<Int>(0)
        let value: Int
        init(_ value: Int) { self.value = value; Self.live.add(1, ordering: .relaxed) }
        deinit { Self.live.subtract(1, ordering: .relaxed) }
    }

    struct Unique: ~Copyable {
        let tracked: Tracked
        var flagged = false
    }

    @Test("first in, first out across wrap-around, growth and shrinking; nothing leaks")
    func order() {
        let before = Tracked.live.load(ordering: .relaxed)
        do {
            var q = RingQueue<Unique>(capacity: 4, retainedCapacity: 8)
            var next = 0, expected = 0
            // Interleave pushes and pops so that the start moves around the buffer while it grows.
            for round in 0..<50 {
                for _ in 0..<(round % 7 + 1) { q.append(Unique(tracked: Tracked(next))); next += 1 }
                for _ in 0..<(round % 5) {
                    guard let u = q.popFirst() else { break }
                    #expect(u.tracked.value == expected)
                    expected += 1
                }
            }
            let count = q.count
            #expect(count == next - expected)
            while let u = q.popFirst() {
                #expect(u.tracked.value == expected)
                expected += 1
            }
            let drained = q.isEmpty && q.popFirst() == nil
            #expect(expected == next && drained)
            // Left with elements inside: the deinit frees them.
            for i in 0..<20 { q.append(Unique(tracked: Tracked(i))) }
        }
        #expect(Tracked.live.load(ordering: .relaxed) == before)
    }

    @Test("elements can be changed in place and moved out all at once")
    func inPlace() {
        var q = RingQueue<Unique>(capacity: 2)
        for i in 0..<10 { q.append(Unique(tracked: Tracked(i))) }
        var visited = 0
        q.updateEach { u in
            visited += 1
            if u.tracked.value % 3 == 0 { u.flagged = true }
            return u.tracked.value == 7
        }
        #expect(visited == 8, "stops at the first match")
        var flagged: [Int] = []
        var all: [Int] = []
        q.removeAll { u in
            all.append(u.tracked.value)
            if u.flagged { flagged.append(u.tracked.value) }
        }
        #expect(all == Array(0..<10))
        #expect(flagged == [0, 3, 6])
        let empty = q.isEmpty
        #expect(empty)
    }
}
