import Foundation
import MicroCore
import MicroRegistry
import MicroTestSupport
import Testing

/// The local registry's node files, in one process (what FuzzLocalRegistryFile found).
@Suite(.serialized) struct LocalRegistryFileTests {
    /// Resident memory, from /proc/self/statm.
    func residentBytes() throws -> Int {
        let fields = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")
        return Int(fields[1])! * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// An empty node file (a full disk, a stray file) is skipped, and reading it costs no memory: the registry read
    /// files with `FileManager.contents(atPath:)`, which on Linux leaks 4 KB for each empty file it reads (40 MB
    /// in each round of 10,000 reads below). Resident memory is the whole process's, and parallel tests make it
    /// grow too, until they reach their peak: a leak grows it in every round, so rounds go on (at most 10) until one
    /// grows less than the bound, and the quietest round is the one judged.
    @Test func emptyNodeFileIsSkippedWithoutLeaking() async throws {
        let dir = try makeTemporaryDirectory("micro-local-empty")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let registry = LocalRegistry(directory: dir)
        let service = Service(name: "greeter", version: "v1", nodes: [Node(id: "greeter-1", address: "127.0.0.1:8081")])
        try await registry.register(service)
        #expect(FileManager.default.createFile(atPath: dir + "/greeter/empty.json", contents: Data()))
        for _ in 0..<1000 { #expect(try await registry.listServices() == [service]) }
        var growths: [Int] = []
        for _ in 0..<10 {
            let before = try residentBytes()
            for _ in 0..<10_000 { _ = try await registry.listServices() }
            growths.append(try residentBytes() - before)
            if growths.last! < 16 << 20 { break }
        }
        #expect(growths.min()! < 16 << 20, "resident memory grew by \(growths.map { $0 >> 20 }) MB in rounds of 10,000 reads")
        #expect(try await registry.getService("greeter") == [service])
    }
}
