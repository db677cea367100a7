import MicroEventLoop
import Synchronization

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
