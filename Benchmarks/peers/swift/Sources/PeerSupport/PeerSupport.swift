// Shared by the peer servers: a small hand-written command-line parser (errors are ONE line on
// stderr and exit status 2, `--help` prints usage and exits 0), the "listening" line written
// straight to fd 1 (never block-buffered, whatever stdout is), and exit(0) on SIGTERM/SIGINT.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The options both servers understand (each server chooses which flags it accepts).
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 0
    public var threads = 1
    public var tls = false
    public var certPath: String?
    public var keyPath: String?
    /// nio-echo only: gather a read burst's frames into one write.
    public var coalesce = false
    /// grpc-swift-echo only: disable the transport's flush coalescing.
    public var noFlushCoalescing = false
    /// grpc-swift-echo only: run Swift concurrency on the NIO event loops.
    public var nioExecutor = false

    public init() {}
}

/// One flag a server accepts.
public enum Flag: Sendable, Hashable {
    case host, port, threads, tls, cert, key, coalesce, noFlushCoalescing, nioExecutor

    var name: String {
        switch self {
        case .host: "--host"
        case .port: "--port"
        case .threads: "--threads"
        case .tls: "--tls"
        case .cert: "--cert"
        case .key: "--key"
        case .coalesce: "--coalesce"
        case .noFlushCoalescing: "--no-flush-coalescing"
        case .nioExecutor: "--nio-executor"
        }
    }

    var takesValue: Bool {
        switch self {
        case .host, .port, .threads, .cert, .key: true
        case .tls, .coalesce, .noFlushCoalescing, .nioExecutor: false
        }
    }
}

/// Parses `CommandLine.arguments`. Accepts `--flag value` and `--flag=value`.
/// `--help`/`-h`: prints `usage` to stdout and exits 0. Any error: one line on stderr, exit 2.
public func parseServerOptions(program: String, usage: String, accepted: Set<Flag>) -> ServerOptions {
    var options = ServerOptions()
    var args = CommandLine.arguments.dropFirst().makeIterator()

    func fail(_ message: String) -> Never {
        writeAll(fd: 2, "\(program): \(message) (see --help)\n")
        exit(2)
    }

    while let arg = args.next() {
        if arg == "--help" || arg == "-h" {
            writeAll(fd: 1, usage.hasSuffix("\n") ? usage : usage + "\n")
            exit(0)
        }
        guard arg.hasPrefix("--") else { fail("unexpected argument '\(arg)'") }

        var name = arg
        var inlineValue: String?
        if let eq = arg.firstIndex(of: "=") {
            name = String(arg[..<eq])
            inlineValue = String(arg[arg.index(after: eq)...])
        }
        guard let flag = accepted.first(where: { $0.name == name }) else {
            fail("unknown option '\(name)'")
        }

        var value = ""
        if flag.takesValue {
            if let inlineValue {
                value = inlineValue
            } else if let next = args.next() {
                value = next
            } else {
                fail("missing value for \(name)")
            }
            if value.isEmpty { fail("empty value for \(name)") }
        } else if inlineValue != nil {
            fail("\(name) takes no value")
        }

        switch flag {
        case .host:
            options.host = value
        case .port:
            guard let port = Int(value), (0...65535).contains(port) else {
                fail("invalid --port '\(value)' (expected 0...65535)")
            }
            options.port = port
        case .threads:
            guard let threads = Int(value), (1...256).contains(threads) else {
                fail("invalid --threads '\(value)' (expected 1...256)")
            }
            options.threads = threads
        case .tls:
            options.tls = true
        case .cert:
            options.certPath = value
        case .key:
            options.keyPath = value
        case .coalesce:
            options.coalesce = true
        case .noFlushCoalescing:
            options.noFlushCoalescing = true
        case .nioExecutor:
            options.nioExecutor = true
        }
    }

    if options.tls && (options.certPath == nil || options.keyPath == nil) {
        fail("--tls needs --cert FILE and --key FILE")
    }
    return options
}

/// Prints a runtime failure (not a usage error) as one line on stderr and exits 1.
public func die(program: String, _ message: String) -> Never {
    writeAll(fd: 2, "\(program): \(message)\n")
    exit(1)
}

/// Writes the ready line to fd 1 in a single write(2): visible at once even when stdout is a pipe.
public func announceListening(program: String, host: String, port: Int) {
    let shown = host.contains(":") ? "[\(host)]" : host
    writeAll(fd: 1, "\(program) listening on \(shown):\(port)\n")
}

/// SIGTERM and SIGINT end the process at once with status 0 (_exit is async-signal-safe).
public func exitZeroOnTermination() {
    _ = signal(SIGTERM) { _ in _exit(0) }
    _ = signal(SIGINT) { _ in _exit(0) }
}

private func writeAll(fd: Int32, _ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
