// micro-echo: the framed-echo server of the transport benchmarks (4-byte big-endian length + payload, each
// frame echoed back). usage: micro-echo [--host 127.0.0.1] [--port 9000] [--threads 1]
import Glibc
import MicroEventLoop
import MicroTLS
import MicroUVTransport

func fail(_ message: String) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

var host = "127.0.0.1"
var port = 9000
var threads = 1
var tls = false
var certFile: String?
var keyFile: String?
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--host":
        guard let v = args.next() else { fail("micro-echo: --host needs a value") }
        host = v
    case "--port":
        guard let v = args.next().flatMap(Int.init), (0...65_535).contains(v) else { fail("micro-echo: --port needs a port number (0-65535)") }
        port = v
    case "--threads":
        guard let v = args.next().flatMap(Int.init), v > 0 else { fail("micro-echo: --threads needs a positive integer") }
        threads = v
    case "--tls": tls = true
    case "--cert": certFile = args.next()
    case "--key": keyFile = args.next()
    case "-h", "--help":
        print("usage: micro-echo [--host 127.0.0.1] [--port 9000] [--threads 1] [--tls --cert cert.pem --key key.pem]")
        exit(0)
    default:
        fail("micro-echo: unknown argument \(a)")
    }
}

var tlsContext: TLSContext?
if tls {
    guard let certFile, let keyFile else { fail("micro-echo: --tls needs --cert and --key") }
    do {
        tlsContext = try TLSContext(role: .server, configuration: .server(certificateFile: certFile, keyFile: keyFile))
    } catch {
        fail("micro-echo: \(error)")
    }
}
let context = tlsContext
let group = EventLoopGroup(threads: threads)
let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: host, port: port)) { connection in
    if let context {
        do { try TLSTransform.attach(to: connection, context: context) } catch {
            connection.close()
            return
        }
    }
    LengthPrefixedConnection.echo(connection)
}
let banner = "micro-echo listening on \(listener.localAddress) with \(threads) loop(s)\(tls ? ", TLS" : "")\n"
_ = banner.withCString { write(1, $0, strlen($0)) }
while true { sleep(3600) }
