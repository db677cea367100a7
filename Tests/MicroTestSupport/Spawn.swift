import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawn`.
///
/// Not Foundation's `Process`: on Linux its `run()` reads `/proc/self/fd` entries past their end and crashes now
/// and then in a process with many descriptors (swift-corelibs-foundation PR #5472, not in Swift 6.3.1); this test
/// process spawns hundreds of children. The child gets `stdin`, `stdout` and `stderr` as given, no other
/// descriptor of ours (closed from 3 up), default signal dispositions and an empty signal mask, and its own process
/// group. Reaped with `waitpid` by ``isRunning`` or ``waitUntilExit()``. Thread-safe (one mutex).
public final class SpawnedProcess: Sendable {
    public let pid: Int32
    /// Nil while running; the exit status (or 128 + signal) once reaped. Guarded by its mutex.
    private let exit = Mutex<Int32?>(nil)

    public init(_ path: String, _ arguments: [String], environment: [String: String]? = nil,
                stdin: Int32, stdout: Int32, stderr: Int32) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        Self.closeFrom3(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child = pid_t()
        let rc = posix_spawn(&child, path, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            throw TestProcessError(description: "cannot start \(path): \(String(cString: strerror(rc)))")
        }
        pid = child
    }

    /// Closes every descriptor from 3 up in the child, where glibc offers it (2.34 and later).
    private static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
    }

    /// Whether it still runs (reaps it once it exited).
    public var isRunning: Bool {
        exit.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, WNOHANG)
            if r == pid || (r == -1 && errno == ECHILD) {
                status = Self.decode(raw)
                return false
            }
            return true
        }
    }

    /// The exit status (128 + the signal for a process killed by one); 0 until it exited.
    public var terminationStatus: Int32 { exit.withLock { $0 ?? 0 } }

    /// Blocks until it exited. For children known to exit soon (after SIGKILL, or short commands).
    public func waitUntilExit() {
        exit.withLock { status in
            guard status == nil else { return }
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
            status = Self.decode(raw)
        }
    }

    private static func decode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7f
        return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    }
}
