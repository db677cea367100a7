import Foundation
import MicroTestSupport
import Testing

/// micro-echo (the reference kit's server; `micro` has MicroCommandTests) answers `--help` (exit 0) and a bad flag or value with one line and a non-zero exit, never a
/// backtrace, and never starts serving on a bad flag.
@Suite("Executables: --help and bad flags")
struct ExecutableFlagsTests {
    static let executables = ["micro-echo"]

    static func run(_ exe: String, _ args: [String]) async throws -> (status: Int32, output: String) {
        let dir = try makeTemporaryDirectory("flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try ChildProcess(productsDirectory() + "/" + exe, args, logPath: dir + "/out.log")
        let exited = await child.waitForExit(seconds: 20)
        if !exited { child.kill() }
        #expect(exited, "\(exe) \(args) must exit by itself")
        return (child.status, child.output)
    }

    @Test(arguments: executables)
    func help(_ exe: String) async throws {
        let r = try await Self.run(exe, ["--help"])
        #expect(r.status == 0, "\(exe) --help: \(r.output)")
        #expect(r.output.contains("usage"), "\(exe) --help: \(r.output)")
    }

    @Test(arguments: executables)
    func badFlag(_ exe: String) async throws {
        let r = try await Self.run(exe, ["--no-such-flag", "1"])
        #expect(r.status != 0, "\(exe)")
        #expect(r.output.split(separator: "\n").count == 1, "\(exe): one line, got \(r.output)")
        #expect(!r.output.contains("Fatal error") && !r.output.contains("Backtrac"), "\(exe): \(r.output)")
    }

    @Test("bad values are refused, not ignored", arguments: [
        ("micro-echo", ["--port", "abc"]), ("micro-echo", ["--threads", "0"]),
    ])
    func badValue(_ exe: String, _ args: [String]) async throws {
        let r = try await Self.run(exe, args)
        #expect(r.status == 2, "\(exe) \(args): \(r.output)")
        #expect(r.output.split(separator: "\n").count == 1, "\(exe) \(args): \(r.output)")
    }
}
