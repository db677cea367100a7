public import Foundation

/// Shared by the test targets. Test certificates made by the `openssl` command in a fresh temporary folder: a CA, a server certificate for
/// localhost/127.0.0.1, a client certificate, an expired server certificate, one for another host, and a second CA.
public struct Certificates: Sendable {
    public let dir: String
    public var ca: String { dir + "/ca.pem" }
    public var otherCA: String { dir + "/other-ca.pem" }
    public var serverCert: String { dir + "/srv.pem" }
    public var serverKey: String { dir + "/srv.key" }
    public var clientCert: String { dir + "/cli.pem" }
    public var clientKey: String { dir + "/cli.key" }
    public var expiredCert: String { dir + "/expired.pem" }
    public var otherHostCert: String { dir + "/other-host.pem" }

    /// The certificates of this test process: made once (the first caller waits; making a set per test blocked
    /// the cooperative pool for seconds when tests ran in parallel) and shared, read-only.
    public static func make() throws -> Certificates {
        switch shared {
        case .success(let c): return c
        case .failure(let e): throw e
        }
    }

    private static let shared: Result<Certificates, any Error> = Result { try makeFresh() }

    /// A new set in a fresh folder (the caller removes it).
    public static func makeFresh() throws -> Certificates {
        let dir = NSTemporaryDirectory() + "micro-tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let script = """
        set -e
        cd '\(dir)'
        k() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null; }
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=micro test CA" 2>/dev/null
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj "/CN=other CA" 2>/dev/null
        printf "subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n" > srv.ext
        printf "subjectAltName=DNS:other.example\\nextendedKeyUsage=serverAuth\\n" > other.ext
        printf "extendedKeyUsage=clientAuth\\n" > cli.ext
        k srv localhost
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile srv.ext 2>/dev/null
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out expired.pem -days -1 -extfile srv.ext 2>/dev/null
        openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out other-host.pem -days 2 -extfile other.ext 2>/dev/null
        k cli "micro client"
        openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 -extfile cli.ext 2>/dev/null
        """
        let status = try run("/bin/sh", ["-c", script]).status
        guard status == 0 else { throw CertificateError(message: "openssl failed (\(status))") }
        return Certificates(dir: dir)
    }

    /// Removes a set made with ``makeFresh()``; the shared set stays for the other tests (in the temporary folder).
    public func remove() {
        if case .success(let shared) = Self.shared, shared.dir == dir { return }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

public struct CertificateError: Error {
    public var message: String
    public init(message: String) { self.message = message }
}

/// Starts `path` with `args`, its output (stdout and stderr) in one pipe, `input` written to its stdin, which is
/// then closed. Returns the process and the read end of its output.
private func start(_ path: String, _ args: [String], input: Data?) throws -> (process: SpawnedProcess, output: FileHandle) {
    // A peer that exits before reading its input (a refused handshake) must give EPIPE, not kill the test process.
    signal(SIGPIPE, SIG_IGN)
    var out: [Int32] = [0, 0]
    var inp: [Int32] = [0, 0]
    // Children close every descriptor from 3 up, so these need no close-on-exec for other children's sake.
    guard pipe(&out) == 0 else { throw CertificateError(message: "pipe failed") }
    guard pipe(&inp) == 0 else {
        close(out[0]); close(out[1])
        throw CertificateError(message: "pipe failed")
    }
    for fd in out + inp { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let p: SpawnedProcess
    do {
        p = try SpawnedProcess(path, args, stdin: inp[0], stdout: out[1], stderr: out[1])
    } catch {
        for fd in out + inp { close(fd) }
        throw error
    }
    close(out[1])
    close(inp[0])
    if let input {
        input.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(inp[1], raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
        }
    }
    close(inp[1])
    return (p, FileHandle(fileDescriptor: out[0], closeOnDealloc: true))
}

/// Runs a command to completion with a time limit; returns its status and output. Blocks its thread: for short
/// commands (making certificates); use ``runAsync(_:_:input:seconds:)`` for anything that talks to a test server.
@discardableResult
public func run(_ path: String, _ args: [String], input: Data? = nil, seconds: Double = 20) throws -> (status: Int32, output: String) {
    let (p, out) = try start(path, args, input: input)
    let deadline = Date().addingTimeInterval(seconds)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { kill(p.pid, SIGKILL) }
    p.waitUntilExit()
    let data = out.readDataToEndOfFile()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// ``run(_:_:input:seconds:)`` without blocking a thread of the cooperative pool while the command runs: for
/// commands that talk to a server of the test (openssl s_client, python3), which may take a while.
@discardableResult
public func runAsync(_ path: String, _ args: [String], input: Data? = nil, seconds: Double = 20) async throws -> (status: Int32, output: String) {
    let (p, out) = try start(path, args, input: input)
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while p.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    if p.isRunning { kill(p.pid, SIGKILL) }
    while p.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
    let data = out.readDataToEndOfFile()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}
