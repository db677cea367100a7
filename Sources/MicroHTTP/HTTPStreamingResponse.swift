/// A response whose body is still arriving.
public struct HTTPStreamingResponse: Sendable {
    public let head: HTTPResponseHead
    /// Body bytes as they arrive, in pieces of any size; finishes at the end of the response, throws on a broken
    /// connection.
    public let body: AsyncThrowingStream<[UInt8], any Error>
    let handle: ExchangeHandle

    /// Closes the connection; the body stream ends with ``HTTPError/cancelled``. Safe from any thread, idempotent.
    public func cancel() { handle.cancel() }
}
