/// Receives the outcome of one exchange, on the exchange's loop. Exactly one of `failed` or `ended` is called
/// last.
protocol ExchangeSink: AnyObject, Sendable {
    func head(_ head: HTTPResponseHead)
    func body(_ bytes: [UInt8])
    func ended()
    func failed(_ error: HTTPError)
}
