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

    @Test("a straggler a whole table behind shares its slot through the overflow, and growth keeps both")
    func stragglers() {
        var table = StreamTable<Int>()
        table[1] = 1
        // Keep the table at 16 slots: ids 17, 33, 49 all map to slot 1.
        for id: UInt32 in [17, 33, 49] { table[id] = Int(id) }
        #expect(table.count == 4 && table[1] == 1 && table[17] == 17 && table[33] == 33 && table[49] == 49)
        // The slot's owner leaves; an overflowed id is updated where it lives, not duplicated.
        #expect(table.removeValue(forKey: 1) == 1)
        table[33] = -33
        #expect(table.count == 3 && table[33] == -33 && table.allKeys.sorted() == [17, 33, 49])
        // Growing re-places everything.
        for id: UInt32 in 100..<140 { table[id] = Int(id) }
        #expect(table.count == 43 && table[17] == 17 && table[33] == -33 && table[49] == 49 && table[139] == 139)
        for id: UInt32 in [17, 33, 49] { #expect(table.removeValue(forKey: id) != nil) }
        #expect(table.removeValue(forKey: 49) == nil)
        #expect(table.count == 40)
    }
}
