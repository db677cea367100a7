public import MicroCore

extension Server {
    /// Subscribes `handler` to `topic` through the configured broker (``ServerConfiguration/broker``); with
    /// `queue`, as a member of that queue group (one member gets each message). Active at once, whether or not
    /// the server was started. What the handler throws is returned to the publisher.
    ///
    /// ``shutdown(gracePeriod:)`` ends the subscription (before draining, so that publishers stop choosing this
    /// node); `unsubscribe()` ends it earlier. Throws ``RPCUsageError`` when no broker is configured.
    public func subscribe(topic: String, queue: String? = nil,
                          handler: @escaping @Sendable (BrokerMessage) async throws -> Void) async throws -> Subscription {
        guard let broker = configuration.broker else {
            throw RPCUsageError("server \(configuration.name) has no broker: set ServerConfiguration.broker to subscribe to \(topic)")
        }
        let wrapped: @Sendable (BrokerMessage) async throws -> Void
        if let middleware = configuration.middleware {
            wrapped = { message in try await middleware.interceptMessage(message, topic: topic, next: handler) }
        } else {
            wrapped = handler
        }
        let subscription = try await broker.subscribe(topic, options: SubscribeOptions(queue: queue), handler: wrapped)
        remember(subscription)
        return subscription
    }

    /// Subscribes a typed handler: each message's body is decoded as `T` with the codec its `Content-Type`
    /// header names (raw bytes when it has none); a message no codec reads fails its delivery with
    /// ``RPCError`` `invalidArgument`, which the publisher gets.
    public func subscribe<T>(topic: String, queue: String? = nil, _ type: T.Type = T.self,
                             handler: @escaping @Sendable (T, BrokerMessage) async throws -> Void) async throws -> Subscription {
        let codecs = configuration.codecs
        return try await subscribe(topic: topic, queue: queue) { message in
            let contentType = message.contentType ?? ContentType.raw
            guard let codec = codecs.codec(for: contentType) else { throw codecs.unsupported(contentType) }
            try await handler(try codec.decode(T.self, from: message.body), message)
        }
    }
}
