import MicroInMemory
// micro-selector-bench: nodes selected per second from a warm cache, per strategy: one task through `select`
// (async), one task through `selectCached` (sync), and `--tasks` tasks at once on the same service; and the
// registry lookups the selector made during a 10,000-call run after warm-up.
//
//   swift build -c release --product micro-selector-bench && .build/release/micro-selector-bench [--calls N] [--nodes N] [--tasks N]
import MicroCore
import MicroRegistry
import MicroSelector
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    let line = "micro-selector-bench: " + message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

struct Options {
    var calls = 2_000_000
    var nodes = 10
    var tasks = 2
}

var options = Options()
var argv = CommandLine.arguments.dropFirst()
while let flag = argv.popFirst() {
    if flag == "--help" || flag == "-h" {
        print("usage: micro-selector-bench [--calls N] [--nodes N] [--tasks N]")
        exit(0)
    }
    guard ["--calls", "--nodes", "--tasks"].contains(flag) else { fail("unknown argument \(flag) (--help for usage)") }
    guard let value = argv.popFirst().flatMap(Int.init), value > 0 else { fail("\(flag) needs a positive integer") }
    switch flag {
    case "--calls": options.calls = value
    case "--nodes": options.nodes = value
    default: options.tasks = value
    }
}
let config = options

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
func cycle(_ selector: RegistrySelector, _ latency: Duration) async throws {
    let next = try await selector.select("bench")
    let node = try next.next()
    next.mark(node, outcome: .success(latency: latency))
}

func run(_ strategy: Strategy) async throws {
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
        let seconds = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        let perSecond = Double(n) / seconds
        return "\(Int(perSecond / 1000)) k/s (\(Int((seconds / Double(n)) * 1e9)) ns)"
    }
    let name = strategy.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)
    print("\(name) single: \(rate(config.calls, single))  sync: \(rate(config.calls, sync))  \(config.tasks) tasks: \(rate(perTask * config.tasks, contended))  lookups in 10,000 calls: \(lookups)")
}

print("select + next + mark per second, warm cache, \(config.nodes) nodes, \(config.calls) calls per measurement")
for strategy in Strategy.allCases {
    try await run(strategy)
}
