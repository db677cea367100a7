import MicroEventLoop
import Synchronization

/// Receives the outcome of one exchange, on the exchange's loop. Exactly one of `failed` or `ended` is called
/// last.
protocol ExchangeSink: AnyObject, Sendable {
    func head(_ head: HTTPResponseHead)
    func body(_ bytes: [UInt8])
    func ended()
    func failed(_ error: HTTPError)
}

/// One request and its response on its own TCP connection. Loop-confined: created, driven and closed on `loop`.
/// `@unchecked Sendable` only so that a reference can travel to its loop (as ``TCPConnection``); every use is on
/// the loop.
final class HTTPExchange: TCPConnectionDelegate, @unchecked Sendable {
    let loop: EventLoop
    let request: HTTPRequest
    let address: SocketAddress
    let timeoutMilliseconds: UInt64
    let sink: any ExchangeSink
    /// Whether the deadline runs until the body ends (true) or only until the head arrives (streams).
    var deadlineCoversBody = true

    private var connection: TCPConnection?
    private var timer: LoopTimer?
    private var parser = HTTPResponseParser()
    private var finished = false
    private var cancelled = false

    init(loop: EventLoop, request: HTTPRequest, address: SocketAddress, timeoutMilliseconds: UInt64, sink: any ExchangeSink) {
        self.loop = loop
        self.request = request
        self.address = address
        self.timeoutMilliseconds = timeoutMilliseconds
        self.sink = sink
    }

    func start() {
        timer = LoopTimer(loop: loop, timeout: max(1, timeoutMilliseconds)) { [weak self] _ in
            self?.fail(.timedOut)
        }
        TCPConnection.connect(on: loop, to: address, timeoutMilliseconds: max(1, timeoutMilliseconds)) { [self] result in
            switch result {
            case .failure(let error):
                fail(.connectFailed("\(address): \(error)"))
            case .success(let connection):
                if finished {
                    connection.close()
                    return
                }
                self.connection = connection
                connection.delegate = self
                connection.startReading()
                connection.write(contentsOf: request.serialized(host: address.description))
                connection.flush()
            }
        }
    }

    func cancel() { fail(.cancelled) }

    func connectionDidRead(_ connection: TCPConnection, _ bytes: UnsafeRawBufferPointer) {
        guard !finished else { return }
        do {
            try parser.feed(bytes) { deliver($0) }
        } catch let error as HTTPError {
            fail(error)
        } catch {
            fail(.malformedResponse("\(error)"))
        }
    }

    func connectionDidClose(_ connection: TCPConnection, error: UVError?) {
        self.connection = nil
        guard !finished else { return }
        do {
            try parser.finish { deliver($0) }
            if !finished { fail(.connectionClosed(error.map { "\($0)" } ?? "by the peer")) }
        } catch let error as HTTPError {
            fail(error)
        } catch {
            fail(.connectionClosed("\(error)"))
        }
    }

    private func deliver(_ event: HTTPResponseParser.Event) {
        guard !finished else { return }
        switch event {
        case .head(let head):
            if !deadlineCoversBody {
                timer?.cancel()
                timer = nil
            }
            sink.head(head)
        case .body(let bytes):
            sink.body(bytes)
        case .end:
            finished = true
            timer?.cancel()
            timer = nil
            connection?.close()
            connection = nil
            sink.ended()
        }
    }

    private func fail(_ error: HTTPError) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        timer = nil
        connection?.close()
        connection = nil
        sink.failed(error)
    }
}

/// Carries an exchange across threads so that it can be cancelled from anywhere. The exchange itself is only
/// touched on its loop.
final class ExchangeHandle: @unchecked Sendable {
    /// Guarded by `state`'s mutex; the exchange inside is only used on its loop.
    private let state = Mutex<(exchange: HTTPExchange?, cancelled: Bool)>((nil, false))

    func attach(_ exchange: HTTPExchange) {
        let cancelledEarly = state.withLock { s -> Bool in
            s.exchange = exchange
            return s.cancelled
        }
        if cancelledEarly { exchange.loop.execute { [self] in self.takeExchange()?.cancel() } }
    }

    func cancel() {
        let exchange = state.withLock { s -> HTTPExchange? in
            s.cancelled = true
            return s.exchange
        }
        guard let exchange else { return }
        exchange.loop.execute { [self] in self.takeExchange()?.cancel() }
    }

    private func takeExchange() -> HTTPExchange? {
        state.withLock { s in
            defer { s.exchange = nil }
            return s.exchange
        }
    }
}

/// Collects a whole response and resumes the caller once. Used on the exchange's loop only.
final class BufferedCollector: ExchangeSink, @unchecked Sendable {
    private let continuation: CheckedContinuation<HTTPResponse, any Error>
    // Loop-confined.
    private var head: HTTPResponseHead?
    private var bytes: [UInt8] = []

    init(continuation: CheckedContinuation<HTTPResponse, any Error>) { self.continuation = continuation }

    func head(_ head: HTTPResponseHead) { self.head = head }
    func body(_ bytes: [UInt8]) { self.bytes += bytes }
    func ended() { continuation.resume(returning: HTTPResponse(head: head!, body: bytes)) }
    func failed(_ error: HTTPError) { continuation.resume(throwing: error) }
}

/// Resumes the caller with the head, then streams the body. Used on the exchange's loop only.
final class StreamingCollector: ExchangeSink, @unchecked Sendable {
    // Loop-confined; nil once the head has been handed over.
    private var headContinuation: CheckedContinuation<HTTPResponseHead, any Error>?
    private let bodyContinuation: AsyncThrowingStream<[UInt8], any Error>.Continuation

    init(head: CheckedContinuation<HTTPResponseHead, any Error>, body: AsyncThrowingStream<[UInt8], any Error>.Continuation) {
        self.headContinuation = head
        self.bodyContinuation = body
    }

    func head(_ head: HTTPResponseHead) {
        headContinuation?.resume(returning: head)
        headContinuation = nil
    }
    func body(_ bytes: [UInt8]) { bodyContinuation.yield(bytes) }
    func ended() { bodyContinuation.finish() }
    func failed(_ error: HTTPError) {
        if let headContinuation {
            headContinuation.resume(throwing: error)
            self.headContinuation = nil
        }
        bodyContinuation.finish(throwing: error)
    }
}
