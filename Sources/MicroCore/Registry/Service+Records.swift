extension Service {
    /// Checks what every registry needs: a name and node ids. For registry implementations.
    public func validate() throws {
        guard !name.isEmpty else { throw RegistryError.invalid("empty service name") }
        for node in nodes where node.id.isEmpty { throw RegistryError.invalid("node without id in \(name)") }
    }

    /// The same service with only `node`.
    public func with(node: Node) -> Service {
        var s = self
        s.nodes = [node]
        return s
    }
}

/// Groups single-node records into one `Service` per version (the newest metadata of a version wins). For registry
/// implementations.
public func mergeByVersion(_ records: [Service]) -> [Service] {
    var order: [String] = []
    var byVersion: [String: Service] = [:]
    for record in records {
        if var existing = byVersion[record.version] {
            for node in record.nodes {
                if let i = existing.nodes.firstIndex(where: { $0.id == node.id }) {
                    existing.nodes[i] = node
                } else {
                    existing.nodes.append(node)
                }
            }
            byVersion[record.version] = existing
        } else {
            order.append(record.version)
            byVersion[record.version] = record
        }
    }
    return order.map { byVersion[$0]! }
}
