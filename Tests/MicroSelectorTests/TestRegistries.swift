import MicroInMemory
import MicroCore
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Synchronization

/// Wraps a registry: counts reads, and can be taken down (every call fails, open watches break) and back up.
final class FlakyRegistry: Registry {
    let base: any Registry
    private let down = Atomic<Bool>(false)
    private let reads = Atomic<Int>(0)
    private let watchers = Mutex<[RegistryWatcher]>([])

    init(_ base: any Registry = MemoryRegistry()) { self.base = base }

    var getServiceCalls: Int { reads.load(ordering: .relaxed) }

    func setDown(_ value: Bool) {
        down.store(value, ordering: .relaxed)
        if value {
            for w in watchers.withLock({ w in defer { w = [] }; return w }) { w.stop() }
        }
    }

    private func check() throws {
        if down.load(ordering: .relaxed) { throw RegistryError.unavailable("down for the test") }
    }

    func register(_ service: Service, options: RegisterOptions) async throws { try check(); try await base.register(service, options: options) }
    func deregister(_ service: Service) async throws { try check(); try await base.deregister(service) }
    func getService(_ name: String) async throws -> [Service] {
        reads.add(1, ordering: .relaxed)
        try check()
        return try await base.getService(name)
    }
    func listServices() async throws -> [Service] { try check(); return try await base.listServices() }
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        try check()
        let w = try await base.watch(options)
        watchers.withLock { $0.append(w) }
        return w
    }
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
