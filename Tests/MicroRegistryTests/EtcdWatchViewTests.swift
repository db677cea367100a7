@_spi(Fuzzing) import MicroRegistry
import Foundation
import MicroCore
import Testing

/// How the etcd registry reads what etcd sends, without etcd (the inputs FuzzEtcdJSON found problems with).
@Suite struct EtcdWatchViewTests {
    let service = Service(name: "greeter", version: "v1", nodes: [Node(id: "greeter-1", address: "127.0.0.1:8081")])

    func kv(revision: String) throws -> String {
        let value = String(decoding: try JSONEncoder().encode(service), as: UTF8.self)
        return #"{"key":"\#(Data("/micro/registry/greeter/greeter-1".utf8).base64EncodedString())","create_revision":"\#(revision)","mod_revision":"\#(revision)","value":"\#(Data(value.utf8).base64EncodedString())"}"#
    }

    /// A revision of Int64.max in a range answer (etcd never reaches it; anything answering on its port may send it)
    /// trapped on `revision + 1`: the watch now goes on from the last revision there is.
    @Test func rangeAtTheLastRevisionDoesNotTrap() throws {
        let answer = #"{"header":{"revision":"9223372036854775807"},"kvs":[\#(try kv(revision: "9223372036854775807"))]}"#
        let range = try EtcdAnswer.range(Array(answer.utf8))
        #expect(range.revision == .max)
        var view = EtcdWatchView(registryPrefix: "/micro/registry/")
        #expect(view.resync(range) == [RegistryEvent(kind: .create, service: service)])
        #expect(view.nextRevision == .max)
    }

    /// The same in a watch event's mod_revision.
    @Test func watchEventAtTheLastRevisionDoesNotTrap() throws {
        var view = EtcdWatchView(registryPrefix: "/micro/registry/")
        _ = view.resync((revision: 41, records: []))
        let line = #"{"result":{"header":{"revision":"9223372036854775807"},"events":[{"kv":\#(try kv(revision: "9223372036854775807"))}]}}"#
        let applied = view.apply(Array(line.utf8))
        let update = try #require(applied)
        #expect(update.goOn && update.events == [RegistryEvent(kind: .create, service: service)])
        #expect(view.nextRevision == .max)
    }
}
