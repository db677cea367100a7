@testable import MicroUVTransport
import Testing

@Suite("StreamTable")
struct StreamTableTests {
    @Test("agrees with a dictionary over random inserts, replacements and removals, with colliding ids")
    func againstDictionary() {
        var table = StreamTable<Int>()
        var reference: [UInt32: Int] = [:]
        var rng = SystemRandomNumberGenerator()
        var next: UInt32 = 1
        for step in 0..<50_000 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<4:
                // Mostly consecutive ids, as a connection hands them out; some far ones that share a home slot.
                let key = Bool.random(using: &rng) ? next : next &+ UInt32.random(in: 1...4, using: &rng) * 1024
                next += 1
                table[key] = step
                reference[key] = step
            case 4:
                if let key = reference.keys.randomElement(using: &rng) {
                    table[key] = -step
                    reference[key] = -step
                }
            default:
                let key = reference.keys.randomElement(using: &rng) ?? UInt32.random(in: 1...next, using: &rng)
                #expect(table.removeValue(forKey: key) == reference.removeValue(forKey: key))
            }
            if step % 997 == 0 {
                #expect(table.count == reference.count)
                for (k, v) in reference { #expect(table[k] == v) }
                #expect(table.allKeys.sorted() == reference.keys.sorted())
                #expect(table.allValues.sorted() == reference.values.sorted())
            }
        }
        #expect(table[next + 99_999] == nil)
        #expect(!table.contains(next + 99_999))
        while let key = reference.keys.first {
            #expect(table.removeValue(forKey: key) == reference.removeValue(forKey: key))
        }
        #expect(table.isEmpty && table.allKeys.isEmpty)
    }
}
