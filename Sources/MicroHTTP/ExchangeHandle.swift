import Synchronization

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
