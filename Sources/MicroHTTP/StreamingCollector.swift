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
