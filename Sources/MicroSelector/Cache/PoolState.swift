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
    /// Nodes currently stale (kept after a re-read no longer listed them).
    var stale = 0
    /// Superseded calls still counted outstanding, over all nodes (see ``Outcome/superseded(after:)``).
    var lingering = 0
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
        stale = 0
        for service in services {
            let v = versionIndex(for: service)
            for node in service.nodes {
                var slot = NodeSlot(node: node, version: v, weight: weight(of: node))
                if let i = oldIndex[node.id] {
                    let kept = old[i]
                    slot.outstanding = kept.outstanding
                    slot.lingering = kept.lingering
                    slot.lingerUntil = kept.lingerUntil
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

    /// Sets the whole service from a re-read after the watch broke, by the stale-on-error rule: when the read
    /// would remove more than ``SelectorConfiguration/Cache/staleShare`` of the nodes (a registry that came back
    /// empty or partial while the nodes are fine), the nodes it no longer lists stay, marked stale, until the
    /// registry lists them again, a call to one fails, or ``SelectorConfiguration/Cache/staleTime`` passes.
    /// Otherwise it is applied as it is. Returns how many nodes were kept stale.
    @discardableResult
    mutating func resync(with services: [Service], now: UInt64) -> Int {
        var listed = Set<String>()
        for service in services { for node in service.nodes { listed.insert(node.id) } }
        let gone = nodes.filter { !listed.contains($0.node.id) }
        let keep = isMostOfTheService(gone.count)
        let oldVersions = versions
        replace(with: services)
        guard keep else { return 0 }
        let limit = now &+ configuration.cache.staleTime.nanoseconds
        for var slot in gone {
            guard indexByID[slot.node.id] == nil else { continue }
            // Version indexes were rebuilt: point at the same version, kept with its old metadata if not listed.
            let old = oldVersions[slot.version].service
            if let v = versions.firstIndex(where: { $0.service.version == old.version }) {
                slot.version = v
            } else {
                slot.version = versions.count
                versions.append(VersionSlot(service: old))
            }
            if slot.staleUntil == 0 { slot.staleUntil = limit }
            if slot.health.isEjected { ejected += 1 }
            stale += 1
            indexByID[slot.node.id] = nodes.count
            nodes.append(slot)
        }
        countNodesPerVersion()
        return gone.count
    }

    /// The stale-on-error rule's test: whether losing `gone` nodes at once is more than
    /// ``SelectorConfiguration/Cache/staleShare`` of the service.
    private func isMostOfTheService(_ gone: Int) -> Bool {
        gone > 0 && Double(gone) > Double(nodes.count) * configuration.cache.staleShare
    }

    /// Removes stale nodes whose time is up, in one pass. Call only while `stale > 0`.
    mutating func dropExpiredStale(now: UInt64) {
        var removed = 0
        var removedEjected = 0
        nodes.removeAll { slot in
            guard slot.staleUntil != 0 && now >= slot.staleUntil else { return false }
            removed += 1
            if slot.health.isEjected { removedEjected += 1 }
            return true
        }
        guard removed > 0 else { return }
        stale -= removed
        ejected -= removedEjected
        reindex()
    }

    /// After a break whose re-read failed: the nodes the watch reported deleted during the break (`ids`), judged
    /// by the same rule as ``resync(with:now:)``: kept stale when they are most of the service, else removed.
    mutating func resync(removing ids: Set<String>, now: UInt64) {
        let gone = nodes.reduce(0) { $0 + (ids.contains($1.node.id) ? 1 : 0) }
        guard gone > 0 else { return }
        if isMostOfTheService(gone) {
            let limit = now &+ configuration.cache.staleTime.nanoseconds
            for i in nodes.indices where ids.contains(nodes[i].node.id) && nodes[i].staleUntil == 0 {
                nodes[i].staleUntil = limit
                stale += 1
            }
        } else {
            for id in ids { if let i = indexByID[id] { remove(at: i) } }
        }
    }

    /// Removes the node at `i` (indexes after it move).
    mutating func remove(at i: Int) {
        if nodes[i].health.isEjected { ejected -= 1 }
        if nodes[i].staleUntil != 0 { stale -= 1 }
        nodes.remove(at: i)
        reindex()
    }

    private mutating func reindex() {
        generation &+= 1
        indexByID = [:]
        for (i, slot) in nodes.enumerated() { indexByID[slot.node.id] = i }
        countNodesPerVersion()
        recountLingering()
    }

    private mutating func recountLingering() {
        lingering = nodes.reduce(0) { $0 + $1.lingering }
    }

    /// Ends the superseded calls whose time is up. Call only while `lingering > 0`.
    mutating func endExpiredLingering(now: UInt64) {
        for i in nodes.indices where nodes[i].lingering > 0 && now >= nodes[i].lingerUntil {
            nodes[i].outstanding = max(0, nodes[i].outstanding - nodes[i].lingering)
            lingering -= nodes[i].lingering
            nodes[i].lingering = 0
        }
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
                    if nodes[i].staleUntil != 0 {
                        // Listed again: fresh.
                        nodes[i].staleUntil = 0
                        stale -= 1
                    }
                } else {
                    indexByID[node.id] = nodes.count
                    nodes.append(NodeSlot(node: node, version: v, weight: weight(of: node)))
                }
            }
        case .delete:
            for node in event.service.nodes {
                if let i = indexByID[node.id] { remove(at: i) }
            }
        case .interrupted, .resynced:
            // Markers of the watch as a whole (the selector handles them); nothing of this service changes.
            break
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
