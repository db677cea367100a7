import ArgumentParser
import Foundation

// Not ArgumentParser's own main: every failure is one line on standard error (no usage block, no backtrace) and
// an exit code of its kind (CLIError.ExitStatus).
func fail(_ message: String, _ code: Int32) -> Never {
    FileHandle.standardError.write(Data("micro: \(message)\n".utf8))
    exit(code)
}

/// Runs the async `run()` (through an existential, the synchronous default that prints help would be chosen).
func runAsync<C: AsyncParsableCommand>(_ command: C) async throws {
    var command = command
    try await command.run()
}

/// Parses and runs the command; every way out ends the process.
func runCommand() async {
do {
    var command = try MicroCommand.parseAsRoot()
    if let async = command as? any AsyncParsableCommand {
        try await runAsync(async)
    } else {
        try command.run()
    }
} catch let error as CLIError {
    fail(error.description, error.exitCode)
} catch {
    let code = MicroCommand.exitCode(for: error)
    if code == .success {
        // --help, --version and bare `micro`.
        print(MicroCommand.fullMessage(for: error))
        exit(0)
    }
    // One line: the first; a list it announces ("one of the following:") joins it, comma-separated.
    let lines = MicroCommand.message(for: error).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    var message = lines.first ?? "\(error)"
    if message.hasSuffix(":") {
        let items = lines.dropFirst().prefix { $0.hasPrefix("- ") }.map { String($0.dropFirst(2)) }
        if !items.isEmpty { message += " " + items.joined(separator: ", ") }
    }
    fail(message, code == .validationFailure ? CLIError.ExitStatus.usage.rawValue : code.rawValue)
}
}

// A synchronous entry point: the command runs in a detached task while the main thread waits. (Under an async
// `main`, libdispatch parks the main thread in a way valgrind cannot follow, and `valgrind --tool=callgrind`,
// which Benchmarks/count-instructions uses, crashed on the first thread the process made.)
let finished = DispatchSemaphore(value: 0)
Task.detached {
    await runCommand()
    finished.signal()
}
finished.wait()
