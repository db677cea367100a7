import ArgumentParser
import MicroCore
import MicroInMemory
import MicroRegistry
import MicroSelector
import Synchronization

/// `micro selector-bench` (formerly `micro-selector-bench`): nodes selected per second from a warm cache, per
/// strategy: one task through `select` (async), one task through `selectCached` (sync), and `--tasks` tasks at once
/// on the same service; and the registry lookups the selector made during a 10,000-call run after warm-up.
struct SelectorBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selector-bench",
        abstract: "Nodes selected per second from a warm cache, per strategy, single and contended."
    )

    @Option(help: "Calls per measurement.") var calls = 2_000_000
    @Option(help: "Nodes of the service.") var nodes = 10
    @Option(help: "Tasks at once in the contended measurement.") var tasks = 2

    func validate() throws {
        for (name, v) in [("--calls", calls), ("--nodes", nodes), ("--tasks", tasks)] where !(1...100_000_000).contains(v) {
            throw ValidationError("\(name) needs a positive integer, not \(v)")
        }
    }

    func run() async throws {
        say("select + next + mark per second, warm cache, \(nodes) nodes, \(calls) calls per measurement")
        for strategy in Strategy.allCases { try await SelectorBench.run(strategy, config: self) }
    }
}

enum SelectorBench {
    /// Counts the selector's reads of the registry independently of the selector's own counter.
    final class CountingRegistry: Registry {
        let base = MemoryRegistry()
        let lookups = Atomic<Int>(0)
        func register(_ service: Service, options: RegisterOptions) async throws { try await base.register(service, options: options) }
        func deregister(_ service: Service) async throws { try await base.deregister(service) }
        func getService(_ name: String) async throws -> [Service] {
            lookups.add(1, ordering: .relaxed)
            return try await base.getService(name)
        }
        func listServices() async throws -> [Service] { try await base.listServices() }
        func watch(_ options: WatchOptions) async throws -> RegistryWatcher { try await base.watch(options) }
    }

    /// One call's worth of selector work: select, next, mark (through the Next, as the RPC client does).
    @inline(never)
    static func cycle(_ selector: RegistrySelector, _ latency: Duration) async throws {
        let next = try await selector.select("bench")
        let node = try next.next()
        next.mark(node, outcome: .success(latency: latency))
    }

    static func run(_ strategy: Strategy, config: SelectorBenchCommand) async throws {
        let registry = CountingRegistry()
        let nodes = (0..<config.nodes).map { Node(id: "node-\($0)", address: "127.0.0.1:\(20_000 + $0)", metadata: ["weight": "\($0 % 3 + 1)"]) }
        try await registry.register(Service(name: "bench", version: "v1", nodes: nodes))
        var c = SelectorConfiguration()
        c.strategy = strategy
        let selector = RegistrySelector(registry: registry, configuration: c)
        try await cycle(selector, .microseconds(100))  // warm-up: the one registry read

        // A 10,000-call run: registry lookups after warm-up.
        let before = registry.lookups.load(ordering: .relaxed)
        for _ in 0..<10_000 { try await cycle(selector, .microseconds(100)) }
        let lookups = registry.lookups.load(ordering: .relaxed) - before

        // Single task.
        let clock = ContinuousClock()
        let single = try await clock.measure {
            for _ in 0..<config.calls { try await cycle(selector, .microseconds(100)) }
        }
        // Single task, the synchronous warm path (selectCached).
        let sync = clock.measure {
            for _ in 0..<config.calls {
                let next = selector.selectCached("bench")!
                let node = try! next.next()
                next.mark(node, outcome: .success(latency: .microseconds(100)))
            }
        }
        // Contended: `tasks` tasks on the same service at once.
        let perTask = config.calls / config.tasks
        let contended = try await clock.measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<config.tasks {
                    group.addTask {
                        for _ in 0..<perTask { try await cycle(selector, .microseconds(100)) }
                    }
                }
                try await group.waitForAll()
            }
        }
        selector.close()
        func rate(_ n: Int, _ d: Duration) -> String {
            let seconds = d.inSeconds
            let perSecond = Double(n) / seconds
            return "\(Int(perSecond / 1000)) k/s (\(Int((seconds / Double(n)) * 1e9)) ns)"
        }
        let name = strategy.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)
        say("\(name) single: \(rate(config.calls, single))  sync: \(rate(config.calls, sync))  \(config.tasks) tasks: \(rate(perTask * config.tasks, contended))  lookups in 10,000 calls: \(lookups)")
    }
}
