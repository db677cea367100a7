public import MicroEventLoop

/// A small HTTP/1.1 client on one libuv event loop: one TCP connection per request (`Connection: close`),
/// buffered or streamed responses, and a deadline on everything.
///
/// Thread-safe: call from any task; the exchanges run on ``loop``. Made for control-plane traffic (a registry's
/// JSON gateway), not for the request path: no connection reuse, no TLS, no redirects, no proxies.
public final class HTTPClient: Sendable {
    public let loop: EventLoop

    public init(loop: EventLoop) {
        self.loop = loop
    }

    /// Sends `request` to `address` and returns the whole response. Throws ``HTTPError/timedOut`` when the
    /// response is not complete within `timeout` (connect included), and the other ``HTTPError`` cases for
    /// connection failures. A status other than 2xx is not an error here: check ``HTTPResponse/status``.
    public func execute(_ request: HTTPRequest, to address: SocketAddress, timeout: Duration) async throws -> HTTPResponse {
        let handle = ExchangeHandle()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<HTTPResponse, any Error>) in
                let collector = BufferedCollector(continuation: cont)
                let accepted = loop.execute { [loop] in
                    let exchange = HTTPExchange(loop: loop, request: request, address: address,
                                                timeoutMilliseconds: timeout.milliseconds, sink: collector)
                    handle.attach(exchange)
                    exchange.start()
                }
                if !accepted { cont.resume(throwing: HTTPError.connectFailed("event loop is shut down")) }
            }
        } onCancel: {
            handle.cancel()
        }
    }

    /// Sends `request` and returns once the response head has arrived (within `headTimeout`, connect included);
    /// the body then streams through ``HTTPStreamingResponse/body`` with no deadline (a watch stream is
    /// long-lived). Stop it with ``HTTPStreamingResponse/cancel()``; ending the body iteration does not close
    /// the connection by itself.
    public func stream(_ request: HTTPRequest, to address: SocketAddress, headTimeout: Duration) async throws -> HTTPStreamingResponse {
        let (body, bodyContinuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        let handle = ExchangeHandle()
        bodyContinuation.onTermination = { _ in handle.cancel() }
        let head = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<HTTPResponseHead, any Error>) in
                let sink = StreamingCollector(head: cont, body: bodyContinuation)
                let accepted = loop.execute { [loop] in
                    let exchange = HTTPExchange(loop: loop, request: request, address: address,
                                                timeoutMilliseconds: headTimeout.milliseconds, sink: sink)
                    exchange.deadlineCoversBody = false
                    handle.attach(exchange)
                    exchange.start()
                }
                if !accepted { cont.resume(throwing: HTTPError.connectFailed("event loop is shut down")) }
            }
        } onCancel: {
            handle.cancel()
        }
        return HTTPStreamingResponse(head: head, body: body, handle: handle)
    }
}

extension Duration {
    var milliseconds: UInt64 {
        let (s, attos) = components
        return UInt64(max(0, s)) * 1000 + UInt64(max(0, attos)) / 1_000_000_000_000_000
    }
}
