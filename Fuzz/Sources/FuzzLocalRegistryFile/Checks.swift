// The check behind FuzzLocalRegistryFile: the local registry reads node files (`<dir>/<service>/<node>.json`, written
// by any process of the user) through its public surface, from a real directory: whatever a file holds, reading
// never crashes, and finds exactly the node a reference reader finds (a record with one node that has not expired,
// in a file whose name the registry reads); a file expired for over a minute is removed. What it finds registers
// again (in a file named as documented) and reads back the same.
import Foundation
import MicroCore
import MicroRegistry

/// A node file as LocalRegistry documents it, read independently of its own type.
struct NodeFile: Decodable {
    /// Seconds since 1970 after which the node is gone; absent: never.
    var expires: Double?
    var service: Service
}

/// Where the registries of this process keep their files (removed at exit).
let root: String = {
    let dir = NSTemporaryDirectory() + "micro-fuzz-local-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    do {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    } catch {
        fatalError("cannot create \(dir): \(error)")
    }
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "micro-fuzz-local-\(getpid())") }
    return dir
}()

/// Where the file goes, by the control byte: the names the registry reads, and the ones it must skip.
let placements: [(path: String, read: Bool)] = [
    ("greeter/greeter-1.json", true),
    ("caf%C3%A9/n%2F1.json", true),
    ("greeter/.greeter-1.json", false),  // hidden (a temporary file being written has such a name)
    ("greeter/greeter-1.json.tmp", false),
    (".greeter/greeter-1.json", false),  // a hidden directory
]

/// The input's first byte picks the file's name and directory (``placements``); the rest is the file.
func checkNodeFile(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let contents = Data(UnsafeRawBufferPointer(rebasing: data[1...]))
    let placement = placements[Int(control) % placements.count]
    let dir = root + "/scan"
    try? FileManager.default.removeItem(atPath: dir)
    let path = dir + "/" + placement.path
    do {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    } catch {
        fatalError("cannot create the directory of \(path): \(error)")
    }
    write(contents, to: path)

    let registry = LocalRegistry(directory: dir)
    let before = Date().timeIntervalSince1970
    let found = blocking { try await registry.listServices() }
    let after = Date().timeIntervalSince1970
    guard case .success(let services) = found else { fatalError("listServices threw \(found)") }

    let file = try? JSONDecoder().decode(NodeFile.self, from: contents)
    let live = file.map { $0.service.nodes.count == 1 && ($0.expires.map { $0 > after } ?? true) } ?? false
    if let expires = file?.expires, expires > before - 1, expires <= after + 1 {
        // Expiring while being read: either answer is right.
        precondition(services.isEmpty || (placement.read && services == [file!.service]))
    } else if placement.read && live {
        precondition(services == [file!.service], "the registry read \(services), expected \(file!.service)")
    } else {
        precondition(services.isEmpty, "the registry read \(services) from a file it must skip")
    }
    if placement.read, let file, file.service.nodes.count == 1, let expires = file.expires, expires < before - cleanupGrace - 1 {
        precondition(!FileManager.default.fileExists(atPath: path), "a file expired long ago was kept")
    }
    if let service = services.first { checkRegisterAgain(service) }
}

/// The registry's own cleanup grace (60 s, not public): files expired for longer are removed by readers.
let cleanupGrace: Double = 60

/// Registers `service` (one node, as read) in an empty directory: it must land in `<escaped name>/<escaped id>.json`
/// and read back the same, unless an escaped name is longer than a file name may be.
func checkRegisterAgain(_ service: Service) {
    guard (try? service.validate()) != nil else { return }
    let dir = root + "/register"
    try? FileManager.default.removeItem(atPath: dir)
    let registry = LocalRegistry(directory: dir)
    let name = escapeKeyComponent(service.name)
    let file = escapeKeyComponent(service.nodes[0].id) + ".json"
    let tooLong = name.utf8.count > Int(NAME_MAX) || file.utf8.count > Int(NAME_MAX)
    switch blocking({ try await registry.register(service) }) {
    case .success:
        precondition(!tooLong, "registered \(service) under a name longer than NAME_MAX")
    case .failure(let error):
        precondition(tooLong, "register threw \(error) for \(service)")
        if case RegistryError.unavailable = error { return }
        fatalError("register threw \(error), expected RegistryError.unavailable")
    }
    let path = dir + "/" + name + "/" + file
    guard let written = FileManager.default.contents(atPath: path) else { fatalError("no file at \(path)") }
    guard let record = try? JSONDecoder().decode(NodeFile.self, from: written) else { fatalError("the written file does not decode") }
    precondition(record.service == service && record.expires == nil, "the written record differs: \(record.service)")
    let back = blocking { try await registry.getService(service.name) }
    guard case .success(let services) = back, services == [service] else { fatalError("read back \(back), expected \(service)") }
    _ = blocking { try await registry.deregister(service) }
    precondition(!FileManager.default.fileExists(atPath: path), "deregister left \(path)")
}

/// The registry's file name escaping (letters, digits, `-`, `_` and a `.` not in front stay; every other byte is
/// `%XX`), written from its documentation.
func escapeKeyComponent(_ name: String) -> String {
    var out = ""
    for (i, b) in name.utf8.enumerated() {
        let c = Character(Unicode.Scalar(b))
        if c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || (c == "." && i > 0)) {
            out.append(c)
        } else {
            out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        }
    }
    return out
}

/// Writes a file (without the fsync of `FileManager.createFile`, which would cost more than the rest).
func write(_ contents: Data, to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path): errno \(errno)") }
    defer { close(fd) }
    let written = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    precondition(written == contents.count, "cannot write \(path): errno \(errno)")
}

/// Runs the registry's async calls to their end on the fuzzer's own thread (they never wait for anything): no
/// worker thread allocates or frees while libFuzzer counts allocations and LeakSanitizer looks for leaks (with the
/// shared pool, it took a task still finishing on a worker for a leak), and no thread hop per call.
final class InlineExecutor: TaskExecutor, @unchecked Sendable {
    /// The jobs to run; only touched on the fuzzer's thread (the calls never resume elsewhere).
    private var jobs: [UnownedJob] = []

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.append(UnownedJob(job))
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        let box = ResultBox<T>()
        let task = Task(executorPreference: self) {
            do {
                box.result = .success(try await body())
            } catch {
                box.result = .failure(error)
            }
        }
        while box.result == nil {
            precondition(!jobs.isEmpty, "a registry call waits for something that never comes")
            jobs.removeFirst().runSynchronously(on: asUnownedTaskExecutor())
        }
        _ = task
        return box.result!
    }
}

/// Where a task leaves its result for the fuzzer's thread.
final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

let executor = InlineExecutor()

/// Runs an async registry call to its end.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
    executor.run(body)
}
