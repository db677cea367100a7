import MicroCore
import MicroRegistry
import MicroSelector
import Synchronization

/// A selector that hands out the given nodes in order (each call starts from the first), recording the marks.
final class OrderedSelector: Selector {
    let nodes: [Node]
    let marks = Mutex<[(String, Outcome)]>([])

    init(_ addresses: [String]) {
        nodes = addresses.enumerated().map { Node(id: "n\($0.offset)", address: $0.element) }
    }

    func select(_ service: String, options: SelectOptions) async throws -> Next {
        let nodes = self.nodes
        var i = 0
        return Next(service: service) {
            defer { i += 1 }
            return nodes[min(i, nodes.count - 1)]
        }
    }

    func mark(_ service: String, node: Node, outcome: Outcome) {
        marks.withLock { $0.append((node.id, outcome)) }
    }

    func reset(_ service: String) {}

    var failures: [String] { marks.withLock { $0.filter { if case .failure = $0.1 { true } else { false } }.map(\.0) } }
    var successes: [String] { marks.withLock { $0.filter { if case .success = $0.1 { true } else { false } }.map(\.0) } }
}
