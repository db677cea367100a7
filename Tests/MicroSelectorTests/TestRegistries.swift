import MicroInMemory
import MicroCore
import MicroCoreTestSupport
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Synchronization

extension FlakyRegistry {
    convenience init() { self.init(MemoryRegistry()) }
}

func nodes(_ count: Int, prefix: String = "n", meta: (Int) -> [String: String] = { _ in [:] }) -> [Node] {
    (0..<count).map { Node(id: "\(prefix)\($0)", address: "127.0.0.1:\(10_000 + $0)", metadata: meta($0)) }
}

/// Picks `count` times from fresh `Next`s, marking each pick a success at once; returns picks per node id.
func distribution(_ selector: any Selector, _ service: String, count: Int, options: SelectOptions = SelectOptions()) async throws -> [String: Int] {
    var counts: [String: Int] = [:]
    for _ in 0..<count {
        let node = try await selector.select(service, options: options).next()
        counts[node.id, default: 0] += 1
        selector.mark(service, node: node, outcome: .success(latency: .microseconds(100)))
    }
    return counts
}
