@_exported import MicroTestSupport
import Foundation
import MicroCore
import MicroBroker
import MicroEventLoop
import MicroRegistry
import Synchronization
import Testing

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
func message(_ s: String) -> BrokerMessage { BrokerMessage(body: bytes(s)) }

/// Embedded brokers on one loop, sharing a local registry in a fresh directory (as processes of one machine do).
struct BrokerFixture {
    let group: EventLoopGroup
    let directory: String
    let registry: LocalRegistry
    let brokers: [EmbeddedBroker]

    init(count: Int, configure: (inout EmbeddedBrokerConfiguration) -> Void = { _ in }) throws {
        group = EventLoopGroup(threads: 1)
        directory = try makeTemporaryDirectory("micro-broker-test")
        registry = LocalRegistry(directory: directory)
        var configuration = EmbeddedBrokerConfiguration()
        configure(&configuration)
        brokers = (0..<count).map { [group, registry, configuration] _ in EmbeddedBroker(group: group, registry: registry, configuration: configuration) }
    }

    /// Closes every broker; the loop must close clean.
    func stop() async {
        for b in brokers { await b.close() }
        #expect(group.shutdownGracefully(), "broker loops must close clean")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The environment of a child process that shares this fixture's registry.
    var childEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["MICRO_REGISTRY_DIR"] = directory
        return env
    }
}

/// The `micro` command: the other process of the cross-process tests.
var microPath: String { productsDirectory() + "/micro" }
