// micro-echo: the framed-echo server of the transport benchmarks (4-byte big-endian length + payload, each
// frame echoed back). usage: micro-echo [--host 127.0.0.1] [--port 9000] [--threads 1]
import Glibc
import MicroEventLoop
import MicroUVTransport

func fail(_ message: String) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

var host = "127.0.0.1"
var port = 9000
var threads = 1
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--host": host = args.next() ?? host
    case "--port": port = Int(args.next() ?? "") ?? port
    case "--threads": threads = Int(args.next() ?? "") ?? threads
    case "--tls":
        fail("micro-echo: TLS is not available yet")
    case "-h", "--help":
        print("usage: micro-echo [--host 127.0.0.1] [--port 9000] [--threads 1]")
        exit(0)
    default:
        fail("micro-echo: unknown argument \(a)")
    }
}

let group = EventLoopGroup(threads: threads)
let listener = try await TCPListener.bind(loops: group.loops, address: try SocketAddress(host: host, port: port)) { connection in
    LengthPrefixedConnection.echo(connection)
}
let banner = "micro-echo listening on \(listener.localAddress) with \(threads) loop(s)\n"
_ = banner.withCString { write(1, $0, strlen($0)) }
while true { sleep(3600) }
