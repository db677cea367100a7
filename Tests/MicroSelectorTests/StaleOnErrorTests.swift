import Foundation
import MicroCore
import MicroCoreTestSupport
import MicroInMemory
import MicroRegistry
import MicroSelector
import MicroTestSupport
import Synchronization
import Testing

/// The stale-on-error rule: after a break in the watch, a re-read that would remove most of a service's nodes keeps
/// them, marked stale, while they answer.
@Suite struct StaleOnErrorTests {
    static func configuration(staleTime: Duration = .seconds(600)) -> SelectorConfiguration {
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        c.cache.retryFirst = .milliseconds(20)
        c.cache.retryMax = .milliseconds(50)
        c.cache.staleTime = staleTime
        return c
    }

    /// Takes the registry down, lets `meanwhile` change it behind the selector's back, and brings it back; returns
    /// once the selector watches again and has applied its new read of the services.
    static func outage(_ registry: FlakyRegistry, _ selector: RegistrySelector, meanwhile: () async throws -> Void) async throws {
        registry.setDown(true)
        try await eventually(5, "the watch breaks") { !selector.isWatching }
        try await meanwhile()
        let refreshes = selector.refreshCount
        registry.setDown(false)
        try await eventually(5, "the watch is back and the services read again") {
            selector.isWatching && selector.refreshCount > refreshes
        }
    }

    @Test("a registry that comes back empty: the last-known nodes keep serving, stale, until a call to one fails or it is listed again")
    func registryBackEmpty() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(3)))
        let selector = RegistrySelector(registry: registry, configuration: Self.configuration())
        defer { selector.close() }
        #expect(try await distribution(selector, "s", count: 30) == ["n0": 10, "n1": 10, "n2": 10])
        try await Self.outage(registry, selector) {
            // The registry loses its data while the nodes are fine.
            try await registry.base.deregister(Service(name: "s", nodes: nodes(3)))
        }
        #expect(try await distribution(selector, "s", count: 30) == ["n0": 10, "n1": 10, "n2": 10])

        // A stale node whose call fails is dropped at once.
        let next = try await selector.select("s")
        var picked = try next.next()
        while picked.id != "n1" {
            next.mark(picked, outcome: .success(latency: .microseconds(10)))
            picked = try next.next()
        }
        next.mark(picked, outcome: .failure(latency: .microseconds(10)))
        #expect(try await distribution(selector, "s", count: 20) == ["n0": 10, "n2": 10])

        // n0 registers again; at the next break the re-read lists n0 only: 1 of the 2 nodes gone is not most of
        // them, so the stale n2 goes.
        try await registry.register(Service(name: "s", nodes: [nodes(3)[0]]))
        try await Self.outage(registry, selector) {}
        #expect(try await distribution(selector, "s", count: 10) == ["n0": 10])
    }

    @Test("stale nodes are dropped when their time is up")
    func staleTimeRunsOut() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        let selector = RegistrySelector(registry: registry, configuration: Self.configuration(staleTime: .milliseconds(300)))
        defer { selector.close() }
        #expect(try await distribution(selector, "s", count: 10) == ["n0": 5, "n1": 5])
        // The nodes turn stale after this instant, so they are kept at least until 300 ms after it.
        let before = Timestamp.now
        try await Self.outage(registry, selector) {
            try await registry.base.deregister(Service(name: "s", nodes: nodes(2)))
        }
        let picked = try? await distribution(selector, "s", count: 2)
        #expect(picked?.keys.sorted() == ["n0", "n1"] || Timestamp.now >= before.advanced(by: .milliseconds(300)))
        try await eventually(10, "the stale nodes are dropped") {
            (try? selector.selectCached("s")?.next()) == nil
        }
    }

    @Test("a re-read that removes a minority of the nodes is applied at once")
    func minorityRemovalApplies() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(3)))
        let selector = RegistrySelector(registry: registry, configuration: Self.configuration())
        defer { selector.close() }
        _ = try await distribution(selector, "s", count: 3)
        try await Self.outage(registry, selector) {
            try await registry.base.deregister(Service(name: "s", nodes: [nodes(3)[2]]))
        }
        #expect(try await distribution(selector, "s", count: 20) == ["n0": 10, "n1": 10])
    }

    @Test("the rule turned off (staleShare 1): a registry that comes back empty empties the cache")
    func ruleOff() async throws {
        let registry = FlakyRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(2)))
        var c = Self.configuration()
        c.cache.staleShare = 1
        let selector = RegistrySelector(registry: registry, configuration: c)
        defer { selector.close() }
        _ = try await distribution(selector, "s", count: 2)
        try await Self.outage(registry, selector) {
            try await registry.base.deregister(Service(name: "s", nodes: nodes(2)))
        }
        #expect(throws: SelectorError.noneAvailable("s")) { _ = try selector.selectCached("s")?.next() }
    }

    @Test("a Next that found no node wakes when the watch brings one")
    func waitForChangeWakesOnRegistration() async throws {
        let registry = MemoryRegistry()
        let selector = RegistrySelector(registry: registry)
        defer { selector.close() }
        let next = try await selector.select("later")
        #expect(throws: SelectorError.noneAvailable("later")) { _ = try next.next() }
        let waiter = Task {
            await next.waitForChange(until: Timestamp.now.advanced(by: .seconds(600)))
            return try next.next().id
        }
        try await registry.register(Service(name: "later", nodes: nodes(1)))
        #expect(try await withTimeout(20, "the waiting Next") { try await waiter.value } == "n0")
    }
}

/// A registry whose single watch the test drives event by event, and whose reads can fail: etcd's way of
/// reporting a break (`.interrupted`, the differences, `.resynced`) without etcd.
final class ScriptedRegistry: Registry {
    let base = MemoryRegistry()
    let readsFail = Mutex<Bool>(false)
    let feed: AsyncThrowingStream<RegistryEvent, any Error>.Continuation
    private let events: AsyncThrowingStream<RegistryEvent, any Error>

    init() {
        (events, feed) = AsyncThrowingStream<RegistryEvent, any Error>.makeStream()
    }

    func register(_ service: Service, options: RegisterOptions) async throws { try await base.register(service, options: options) }
    func deregister(_ service: Service) async throws { try await base.deregister(service) }
    func getService(_ name: String) async throws -> [Service] {
        if readsFail.withLock({ $0 }) { throw RegistryError.unavailable("reads fail for the test") }
        return try await base.getService(name)
    }
    func listServices() async throws -> [Service] { try await base.listServices() }
    func watch(_ options: WatchOptions) async throws -> RegistryWatcher {
        RegistryWatcher(events: events) { [feed] in feed.finish() }
    }
}

@Suite struct HeldDeletionTests {
    /// Drives a break whose re-read fails, with `deleted` of the 3 nodes reported deleted during it; returns the
    /// nodes the selector still picks.
    static func breakWithFailedReread(deleting deleted: Int) async throws -> Set<String> {
        let registry = ScriptedRegistry()
        try await registry.register(Service(name: "s", nodes: nodes(3)), options: RegisterOptions())
        var c = SelectorConfiguration()
        c.strategy = .roundRobin
        let selector = RegistrySelector(registry: registry, configuration: c)
        defer { selector.close() }
        #expect(try await distribution(selector, "s", count: 3).count == 3)
        let refreshes = selector.refreshCount
        registry.feed.yield(.interrupted)
        try await eventually(5, "the break is seen") { !selector.isWatching }
        for node in nodes(3).prefix(deleted) { registry.feed.yield(RegistryEvent(kind: .delete, service: Service(name: "s", nodes: [node]))) }
        registry.readsFail.withLock { $0 = true }
        registry.feed.yield(.resynced)
        try await eventually(5, "the re-read was tried") { selector.refreshCount > refreshes }
        return Set(try await distribution(selector, "s", count: 12).keys)
    }

    @Test("a break whose re-read fails: deletions of most nodes are kept stale, a minority is removed")
    func heldDeletionsJudgedWhenTheRereadFails() async throws {
        #expect(try await Self.breakWithFailedReread(deleting: 3) == ["n0", "n1", "n2"], "all reported gone: kept stale")
        #expect(try await Self.breakWithFailedReread(deleting: 1) == ["n1", "n2"], "one of three reported gone: removed")
    }
}
