// nio-echo: framed-echo peer server on SwiftNIO (NIOPosix, optional NIOSSL).
//
// Frame = 4-byte big-endian length N + N payload bytes (N <= 16 MiB; a bigger length closes the
// connection). Every complete frame is echoed back unchanged, in order.
//
// Pipeline, per connection:   [NIOSSLServerHandler] -> BackPressureHandler
//                              -> ByteToMessageHandler(FrameDecoder) -> EchoHandler
// The decoder emits each complete frame (header included) as a zero-copy slice of the read
// buffer; EchoHandler `write`s it without flushing and flushes ONCE per read burst, in
// channelReadComplete, so the server pays one flush (one writev) per burst, not one per frame.
// With --coalesce the frames of a burst are instead gathered into one buffer and written once
// (matters with TLS: NIOSSLHandler makes every buffered write its own TLS record).
import NIOCore
import NIOPosix
import NIOSSL
import PeerSupport

let program = "nio-echo"
let usage = """
    usage: nio-echo [--host 127.0.0.1] [--port 0] [--threads 1] [--tls --cert FILE --key FILE] [--coalesce]

    Framed-echo server on SwiftNIO: each frame is a 4-byte big-endian length + payload (max 16 MiB)
    and is echoed back unchanged. Writes every frame of a read burst, flushes once per burst.

      --host HOST      address to bind (default 127.0.0.1)
      --port N         port to bind, 0 = any free port (default 0)
      --threads N      event-loop threads (default 1)
      --tls            serve TLS (NIOSSL); needs --cert and --key
      --cert FILE      PEM certificate chain
      --key FILE       PEM private key
      --coalesce       one write per read burst instead of one write per frame
      -h, --help       show this help

    When ready, prints one line: nio-echo listening on HOST:PORT. SIGTERM/SIGINT: exit 0.
    """

/// The largest payload accepted; a longer frame closes the connection.
let maxPayload = 16 << 20

struct FrameTooLargeError: Error {
    var length: UInt32
}

/// Splits the byte stream into whole frames (header + payload), each a zero-copy slice.
struct FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return .needMoreData
        }
        guard length <= maxPayload else { throw FrameTooLargeError(length: length) }
        guard let frame = buffer.readSlice(length: 4 + Int(length)) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        // Complete frames were already decoded as they arrived; an incomplete tail is dropped.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

/// Writes each frame as it is decoded; flushes once per read burst.
final class EchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// --coalesce: gathers the frames of a read burst into one buffer, written and flushed once.
final class CoalescingEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var pending: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = Self.unwrapInboundIn(data)
        if self.pending == nil {
            self.pending = frame  // a slice; copied only when a second frame follows
        } else {
            self.pending!.writeBuffer(&frame)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let pending = self.pending {
            self.pending = nil
            context.write(Self.wrapOutboundOut(pending), promise: nil)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

let options = parseServerOptions(
    program: program,
    usage: usage,
    accepted: [.host, .port, .threads, .tls, .cert, .key, .coalesce]
)

let sslContext: NIOSSLContext?
if options.tls, let certPath = options.certPath, let keyPath = options.keyPath {
    do {
        let chain = try NIOSSLCertificate.fromPEMFile(certPath)
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        sslContext = try NIOSSLContext(configuration: configuration)
    } catch {
        die(program: program, "TLS setup failed: \(error)")
    }
} else {
    sslContext = nil
}

exitZeroOnTermination()

let coalesce = options.coalesce
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if let sslContext {
                try pipeline.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            // Stops reading while the socket is unwritable: a client that sends without reading
            // cannot make the server buffer without bound.
            try pipeline.addHandler(BackPressureHandler())
            try pipeline.addHandler(ByteToMessageHandler(FrameDecoder()))
            if coalesce {
                try pipeline.addHandler(CoalescingEchoHandler())
            } else {
                try pipeline.addHandler(EchoHandler())
            }
        }
    }

let server: any Channel
do {
    server = try bootstrap.bind(host: options.host, port: options.port).wait()
} catch {
    die(program: program, "cannot listen on \(options.host):\(options.port): \(error)")
}
guard let address = server.localAddress, let port = address.port else {
    die(program: program, "listening socket has no local address")
}
announceListening(program: program, host: address.ipAddress ?? options.host, port: port)

try? server.closeFuture.wait()
try? group.syncShutdownGracefully()
