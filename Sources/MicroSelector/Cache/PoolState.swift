import MicroCore

/// The state of one service's pool; see ``ServicePool``.
struct PoolState {
    let configuration: SelectorConfiguration
    var versions: [VersionSlot] = []
    var nodes: [NodeSlot] = []
    var indexByID: [String: Int] = [:]
    /// Changes whenever node indexes may have moved (a removal or a full refresh).
    var generation: UInt64 = 0
    /// Round robin position.
    var turn = 0
    var random = FastRandom()
    /// Nodes currently ejected (probing ones included).
    var ejected = 0
    /// Reused list of candidate indexes for one pick.
    var candidates: [Int] = []

    init(configuration: SelectorConfiguration) {
        self.configuration = configuration
        candidates.reserveCapacity(16)
    }

    // MARK: - Keeping the cache current

    /// Sets the whole service (a fresh read from the registry), keeping what is known of nodes that stay.
    mutating func replace(with services: [Service]) {
        let old = nodes
        let oldIndex = indexByID
        generation &+= 1
        versions = []
        nodes = []
        indexByID = [:]
        ejected = 0
        for service in services {
            let v = versionIndex(for: service)
            for node in service.nodes {
                var slot = NodeSlot(node: node, version: v, weight: weight(of: node))
                if let i = oldIndex[node.id] {
                    let kept = old[i]
                    slot.outstanding = kept.outstanding
                    slot.ewma = kept.ewma
                    slot.ewmaUpdated = kept.ewmaUpdated
                    slot.health = kept.health
                }
                if slot.health.isEjected { ejected += 1 }
                if let existing = indexByID[node.id] {
                    nodes[existing] = slot
                } else {
                    indexByID[node.id] = nodes.count
                    nodes.append(slot)
                }
            }
        }
        countNodesPerVersion()
    }

    /// Applies a watch event: `.create`/`.update` add or refresh the nodes given, `.delete` removes them.
    mutating func apply(_ event: RegistryEvent) {
        switch event.kind {
        case .create, .update:
            let v = versionIndex(for: event.service)
            for node in event.service.nodes {
                if let i = indexByID[node.id] {
                    nodes[i].node = node
                    nodes[i].version = v
                    nodes[i].weight = weight(of: node)
                } else {
                    indexByID[node.id] = nodes.count
                    nodes.append(NodeSlot(node: node, version: v, weight: weight(of: node)))
                }
            }
        case .delete:
            var removed = false
            for node in event.service.nodes {
                guard let i = indexByID[node.id] else { continue }
                if nodes[i].health.isEjected { ejected -= 1 }
                nodes.remove(at: i)
                removed = true
            }
            if removed {
                generation &+= 1
                indexByID = [:]
                for (i, slot) in nodes.enumerated() { indexByID[slot.node.id] = i }
            }
        }
        countNodesPerVersion()
    }

    private mutating func countNodesPerVersion() {
        for v in versions.indices { versions[v].nodeCount = 0 }
        for slot in nodes { versions[slot.version].nodeCount += 1 }
    }

    private mutating func versionIndex(for service: Service) -> Int {
        var meta = service
        meta.nodes = []
        if let i = versions.firstIndex(where: { $0.service.version == service.version }) {
            versions[i].service = meta
            return i
        }
        versions.append(VersionSlot(service: meta))
        return versions.count - 1
    }

    private func weight(of node: Node) -> Int {
        node.metadata[configuration.weightKey].flatMap { Int($0) }.map { max(0, $0) } ?? 1
    }

    /// Forgets outcomes, ejections and strategy state.
    mutating func reset() {
        for i in nodes.indices {
            nodes[i].ewma = 0
            nodes[i].weightCurrent = 0
            nodes[i].health = NodeHealth()
        }
        for i in versions.indices { versions[i].canaryCurrent = 0 }
        ejected = 0
        turn = 0
    }
}
