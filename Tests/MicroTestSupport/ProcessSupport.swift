import Foundation
import Glibc

/// Shared by the test targets: free ports, temporary folders, child processes killed by pid, polling with a deadline.

/// A free TCP port on loopback (bound to port 0 and released; another process could take it in between).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A fresh temporary directory.
public func makeTemporaryDirectory(_ prefix: String) throws -> String {
    let dir = NSTemporaryDirectory() + prefix + "-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The directory of the test binary, where SwiftPM also puts the package's executables.
public func productsDirectory() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = (exe as NSString).deletingLastPathComponent
    // Inside an .xctest bundle directory (macOS layout), go up.
    while dir.hasSuffix(".xctest") || dir.hasSuffix("/Contents/MacOS") { dir = (dir as NSString).deletingLastPathComponent }
    return dir
}

public struct TestProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A child process with its output in a file; killed by pid.
public final class ChildProcess: Sendable {
    let process: SpawnedProcess
    public let logPath: String

    public init(_ path: String, _ arguments: [String], environment: [String: String]? = nil, logPath: String) throws {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestProcessError(description: "\(path) is missing or not executable")
        }
        self.logPath = logPath
        let log = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw TestProcessError(description: "cannot write \(logPath)") }
        defer { close(log) }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(null) }
        process = try SpawnedProcess(path, arguments, environment: environment, stdin: null, stdout: log, stderr: log)
    }

    public var pid: Int32 { process.pid }
    /// The exit status, once it exited (128 + the signal when a signal ended it).
    public var status: Int32 { process.terminationStatus }
    public var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL (a crash: nothing is cleaned up) and reap.
    public func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.pid, SIGKILL)
        process.waitUntilExit()
    }

    /// Waits up to `seconds` for the process to exit by itself.
    public func waitForExit(seconds: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        return !process.isRunning
    }

    deinit { kill() }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; returns whether it held.
public func eventually(_ seconds: Double, _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
