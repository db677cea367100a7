import Glibc
import Foundation
import MicroCore
import MicroRPC

/// A command's failure: one line for standard error and the exit code of its kind (documented in `micro --help`).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32

    init(_ description: String, _ exitCode: ExitStatus) {
        self.description = description
        self.exitCode = exitCode.rawValue
    }

    /// The exit codes: sysexits(3) where one fits, 124 for a deadline (as timeout(1)).
    enum ExitStatus: Int32 {
        /// The call reached a node and failed with a status not listed below (the line names it).
        case failed = 1
        /// An unknown flag or subcommand, a bad value, a missing argument (EX_USAGE).
        case usage = 64
        /// The body is not valid JSON (EX_DATAERR).
        case badBody = 65
        /// The service is not in the registry (EX_NOHOST).
        case unknownService = 68
        /// No node of the service could be reached (EX_UNAVAILABLE).
        case unavailable = 69
        /// The service does not serve the endpoint (EX_SOFTWARE is the closest).
        case unknownEndpoint = 70
        /// UNAUTHENTICATED or PERMISSION_DENIED (EX_NOPERM).
        case denied = 77
        /// The deadline passed first.
        case deadline = 124
    }

    /// The error an RPC error becomes.
    init(_ error: RPCError, service: String, endpoint: String) {
        let line = "\(service) \(endpoint): \(error.code.name): \(error.message)"
        switch error.code {
        case .unavailable: self.init(line, .unavailable)
        case .deadlineExceeded: self.init(line, .deadline)
        case .unimplemented: self.init(line, .unknownEndpoint)
        case .unauthenticated, .permissionDenied: self.init(line, .denied)
        default: self.init(line, .failed)
        }
    }

    static let exitCodeHelp = """
    Exit codes: 0 done; 1 the call failed with another status (named in the message); 64 bad usage (unknown flag, \
    bad value); 65 the body is not valid JSON; 68 unknown service; 69 no reachable node; 70 unknown endpoint; \
    77 unauthenticated or permission denied; 124 deadline exceeded.
    """
}

/// Writes one line to standard output (unbuffered: a test or a pipe sees each line as it is written). A reader that
/// went away (`micro bench | head`) loses the rest of the output; the command itself goes on to its end.
func say(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(1, bytes.baseAddress! + done, bytes.count - done)
            if n > 0 { done += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}

/// The body of a command as bytes: valid JSON (checked here, not by the server), or any bytes with `raw`.
func checkedBody(_ text: String, raw: Bool) throws -> [UInt8] {
    let bytes = Array(text.utf8)
    if raw { return bytes }
    do {
        _ = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    } catch {
        let why = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "not valid JSON"
        throw CLIError("the body is not valid JSON: \(why) (use --raw to send bytes as they are)", .badBody)
    }
    return bytes
}

/// `k=v` pairs as metadata; a pair without `=` is a usage error.
func parseMetadata(_ pairs: [String]) throws -> Metadata {
    var m = Metadata()
    for pair in pairs {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { throw CLIError("--metadata needs key=value, not \(pair)", .usage) }
        m.append(String(parts[0]), String(parts[1]))
    }
    return m
}
