@testable import MicroUVTransport
import Testing

@Suite("DeadlineHeap")
struct DeadlineHeapTests {
    @Test("entries come out earliest first, only when due")
    func order() {
        var heap = DeadlineHeap<UInt32>()
        var expected: [UInt64] = []
        var rng = SystemRandomNumberGenerator()
        for i in 0..<500 {
            let at = UInt64.random(in: 1..<10_000, using: &rng)
            heap.insert(at: at, key: UInt32(i))
            expected.append(at)
        }
        expected.sort()
        #expect(heap.popDue(now: expected[0] - 1) == nil, "nothing is due before the earliest deadline")
        var out: [UInt64] = []
        while let e = heap.popDue(now: .max) { out.append(e.at) }
        #expect(out == expected)
        #expect(heap.isEmpty)
    }

    @Test("compacting keeps the live entries in heap order")
    func compact() {
        var heap = DeadlineHeap<UInt32>()
        for i in 0..<200 { heap.insert(at: UInt64(1000 - i), key: UInt32(i)) }
        heap.compact { $0.key % 3 == 0 }
        #expect(heap.count == 67)
        var last: UInt64 = 0
        while let e = heap.popDue(now: .max) {
            #expect(e.key % 3 == 0)
            #expect(e.at >= last)
            last = e.at
        }
    }
}
