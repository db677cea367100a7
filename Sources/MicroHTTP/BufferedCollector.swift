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
