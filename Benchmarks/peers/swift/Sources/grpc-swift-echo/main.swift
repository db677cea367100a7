// grpc-swift-echo: gRPC peer server on grpc-swift-2 with its HTTP/2 SwiftNIO transport
// (`.http2NIOPosix`). One unary method, `/bench.Echo/Call`, whose request and response are raw
// bytes: identity (de)serializers for [UInt8], no protobuf, no code generation; the service is
// registered by hand. The response is the request, unchanged.
//
// Transport configuration: library defaults, except that gRPC's client PING policing is relaxed
// (`minPingIntervalWithoutCalls = 0`, `allowWithoutCalls = true`). By default the server
// counts any PING arriving within 5 minutes of the previous one as a "strike" (strikes reset
// when the server writes HEADERS/DATA) and after 3 strikes sends GOAWAY(ENHANCE_YOUR_CALM,
// "too_many_pings").
//
// Known limit that no transport setting reaches: SwiftNIO HTTP/2's own DoS heuristic allows
// at most 200 PING/SETTINGS/PRIORITY frames per 30 s per connection and then sends
// GOAWAY(ENHANCE_YOUR_CALM) with no debug data. gRPC-Go clients with default dial options
// send a BDP PING (plus a WINDOW_UPDATE) for about every response they receive, so such a
// client is sent GOAWAY about every 200 calls and reconnects (its calls are retried
// transparently). A gRPC-Go client that sets grpc.WithInitialWindowSize and
// grpc.WithInitialConnWindowSize (which turns BDP estimation off) sends no PINGs.
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import NIOCore
import NIOPosix
import PeerSupport

let program = "grpc-swift-echo"
let usage = """
    usage: grpc-swift-echo [--host 127.0.0.1] [--port 0] [--threads 1] [--tls --cert FILE --key FILE]
                           [--no-flush-coalescing] [--nio-executor]

    gRPC server (grpc-swift-2 on its HTTP/2 NIOPosix transport) with one unary method,
    /bench.Echo/Call, that returns the request bytes unchanged (raw bytes, no protobuf).

      --host IP                IP address to bind (default 127.0.0.1)
      --port N                 port to bind, 0 = any free port (default 0)
      --threads N              NIO event-loop threads of the transport (default 1); handlers
                               run on Swift's global concurrency pool (see --nio-executor)
      --tls                    serve TLS (ALPN h2/grpc-exp); needs --cert and --key
      --cert FILE              PEM certificate chain
      --key FILE               PEM private key
      --no-flush-coalescing    disable the transport's flush coalescing (on by default: a flush
                               is delayed up to 100 us or 64 KiB to batch writes)
      --nio-executor           run Swift concurrency (the RPC handlers) on the NIO event
                               loops instead of Swift's global pool: no thread hops per RPC
      -h, --help               show this help

    gRPC client-PING policing is relaxed (any PING rate is allowed, with or without calls);
    SwiftNIO HTTP/2's limit of 200 PING/SETTINGS frames per 30 s per connection still applies.
    When ready, prints one line: grpc-swift-echo listening on HOST:PORT. SIGTERM/SIGINT: exit 0.
    """

/// Identity serializer: the message already is the wire bytes.
struct RawBytesSerializer: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
        Bytes(message)
    }
}

/// Identity deserializer: the wire bytes are the message.
struct RawBytesDeserializer: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

/// `bench.Echo`, registered by hand: `Call` is a unary echo.
struct EchoService: RegistrableRPCService {
    static let call = MethodDescriptor(fullyQualifiedService: "bench.Echo", method: "Call")

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Self.call,
            deserializer: RawBytesDeserializer(),
            serializer: RawBytesSerializer()
        ) { request, _ in
            // Unary: exactly one request message in, one response message out.
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: single.message))
        }
    }
}

let options = parseServerOptions(
    program: program,
    usage: usage,
    accepted: [.host, .port, .threads, .tls, .cert, .key, .noFlushCoalescing, .nioExecutor]
)

// --nio-executor: NIO's singleton event-loop group (of --threads loops) becomes Swift
// concurrency's global executor, so the RPC handler tasks run on the event-loop threads instead
// of hopping to and from Swift's cooperative pool. Must happen on the main thread, before any
// task is enqueued on the global executor.
let eventLoopGroup: MultiThreadedEventLoopGroup
if options.nioExecutor {
    NIOSingletons.groupLoopCountSuggestion = options.threads
    guard NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() else {
        die(program: program, "--nio-executor: cannot install NIO as the global executor")
    }
    eventLoopGroup = .singleton
} else {
    eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
}

let security: HTTP2ServerTransport.Posix.TransportSecurity
if options.tls, let certPath = options.certPath, let keyPath = options.keyPath {
    security = .tls(
        certificateChain: [.file(path: certPath, format: .pem)],
        privateKey: .file(path: keyPath, format: .pem)
    )
} else {
    security = .plaintext
}

let noFlushCoalescing = options.noFlushCoalescing
let config = HTTP2ServerTransport.Posix.Config.defaults { config in
    config.connection.keepalive.clientBehavior = .init(
        minPingIntervalWithoutCalls: .zero,
        allowWithoutCalls: true
    )
    if noFlushCoalescing {
        config.connection.flushCoalescing = nil
    }
    // Advertise a stream limit: with none advertised (the transport's default), gRPC-Go's client with 256 calls in
    // flight on one connection lost it again and again ("transport is closing"); with 4096 it runs without errors.
    config.http2.maxConcurrentStreams = 4096
}

let address: GRPCNIOTransportCore.SocketAddress =
    options.host.contains(":")
    ? .ipv6(host: options.host, port: options.port)
    : .ipv4(host: options.host, port: options.port)

let transport = HTTP2ServerTransport.Posix(
    address: address,
    transportSecurity: security,
    config: config,
    eventLoopGroup: eventLoopGroup
)
let server = GRPCServer(transport: transport, services: [EchoService()])

exitZeroOnTermination()

do {
    try await withThrowingDiscardingTaskGroup { group in
        group.addTask { try await server.serve() }

        // Resolves once the transport is bound. When binding fails it throws a generic error,
        // and serve() throws the real cause, which ends the group and is reported below.
        guard let bound = try? await transport.listeningAddress else { return }
        if let ipv4 = bound.ipv4 {
            announceListening(program: program, host: ipv4.host, port: ipv4.port)
        } else if let ipv6 = bound.ipv6 {
            announceListening(program: program, host: ipv6.host, port: ipv6.port)
        } else {
            announceListening(program: program, host: options.host, port: options.port)
        }
    }
    die(program: program, "server stopped")
} catch {
    die(program: program, "server failed on \(options.host):\(options.port): \(error)")
}
