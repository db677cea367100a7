import Synchronization
import Testing
@testable import MicroMiddleware

@Suite("EndpointTable")
struct EndpointTableTests {
    final class Box: Sendable {
        let service: String
        let endpoint: String

        init(_ service: String, _ endpoint: String) {
            self.service = service
            self.endpoint = endpoint
        }
    }

    @Test("each key's value is made once and found again, whether or not it is the one found last")
    func madeOnce() {
        let made = Atomic<Int>(0)
        let table = EndpointTable<Box> { service, endpoint in
            made.add(1, ordering: .relaxed)
            return Box(service, endpoint)
        }
        let a = table.withValue("s", "A") { $0 }
        #expect(table.withValue("s", "A") { $0 } === a)  // the published entry
        let b = table.withValue("s", "B") { $0 }
        #expect(b !== a && b.endpoint == "B")
        #expect(table.withValue("s", "A") { $0 } === a)  // not the published one: through the lock
        #expect(table.withValue("t", "A") { $0 }.service == "t")  // the service is part of the key
        #expect(made.load(ordering: .relaxed) == 3)
        #expect(table.count == 3)
    }

    @Test("strings equal in value but not in storage find the same entry")
    func equalStrings() {
        let table = EndpointTable<Box> { Box($0, $1) }
        let long = String(repeating: "Endpoint.", count: 4)  // not inline: compared by content
        let first = table.withValue("service", long) { $0 }
        let copy = String(decoding: Array(long.utf8), as: UTF8.self)
        #expect(table.withValue("service", copy) { $0 } === first)
    }

    @Test("threads that alternate between keys always get their own key's value")
    func concurrentReaders() async {
        let table = EndpointTable<Box> { Box($0, $1) }
        let keys = (0..<8).map { "Echo.Call\($0)-with-a-name-longer-than-fifteen-bytes" }
        let wrong = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var wrong = 0
                    for i in 0..<20_000 {
                        let key = keys[(i * (worker + 1)) % keys.count]
                        if table.withValue("svc", key, { $0.endpoint }) != key { wrong += 1 }
                    }
                    return wrong
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
        #expect(table.count == keys.count)
    }
}
