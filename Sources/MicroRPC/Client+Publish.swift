public import MicroCore

extension Client {
    /// Publishes raw bytes to `topic` through the configured broker (``ClientConfiguration/broker``), with
    /// `metadata` as the message's header. At most once; see `Broker` for what the result and errors mean.
    /// Throws ``RPCUsageError`` when no broker is configured.
    @discardableResult
    public func publish(topic: String, message: [UInt8], metadata: [String: String] = [:]) async throws -> PublishResult {
        guard let broker = configuration.broker else {
            throw RPCUsageError("the client has no broker: set ClientConfiguration.broker to publish to \(topic)")
        }
        return try await broker.publish(topic, BrokerMessage(header: metadata, body: message))
    }

    /// Publishes `value` to `topic`, encoded with the codec of `contentType` (by default protobuf for protobuf
    /// messages, raw for `[UInt8]`, else the configured default, JSON), which the `Content-Type` header names.
    @discardableResult
    public func publish<T: Sendable>(topic: String, _ value: T, contentType: String? = nil,
                                     metadata: [String: String] = [:]) async throws -> PublishResult {
        let type = contentType ?? defaultContentType(for: T.self)
        guard let codec = configuration.codecs.codec(for: type) else {
            throw RPCUsageError("no codec for content type \"\(type)\" (known: \(configuration.codecs.contentTypes.joined(separator: ", ")))")
        }
        var header = metadata
        header[BrokerMessage.contentTypeHeader] = type
        return try await publish(topic: topic, message: try codec.encode(value), metadata: header)
    }
}
