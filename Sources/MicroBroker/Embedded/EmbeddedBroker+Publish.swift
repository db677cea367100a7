public import MicroCore
internal import MicroFraming
internal import MicroRegistry

extension EmbeddedBroker {
    @discardableResult
    public func publish(_ topic: String, _ message: BrokerMessage) async throws -> PublishResult {
        if closed.load(ordering: .relaxed) { throw BrokerError(.closed, "the broker is closed") }
        try Self.validate(topic)
        let nodes = try await cache.nodes(topic)
        if nodes.isEmpty { return PublishResult() }
        let plan = QueuePlan.targets(nodes, queue: { $0.metadata[Self.queueMetadataKey] }, rotation: rotation.add(1, ordering: .relaxed).oldValue)
        var metadata = Metadata()
        for (k, v) in message.header { metadata.append(k, v) }
        let head = RequestHead(service: Self.deliveryService, endpoint: topic,
                               contentType: message.contentType ?? "application/octet-stream",
                               timeoutMicroseconds: Self.microseconds(configuration.deliveryTimeout), metadata: metadata)
        let tally = await DeliveryTally.run(plan) { node in await self.deliver(message, head: head, topic: topic, to: node) }
        return try tally.result(topic: topic)
    }

    /// One delivery attempt: directly to a subscription of this broker, else a unary call to the node's listener.
    nonisolated(nonsending) func deliver(_ message: BrokerMessage, head: RequestHead, topic: String, to node: Node) async -> DeliveryOutcome {
        let queue = node.metadata[Self.queueMetadataKey]
        if let local = listener.subscription(node.id) {
            do {
                try await local.handler(message)
                return .delivered
            } catch {
                return .failed(DeliveryFailure(subscriberID: node.id, queue: queue, code: BrokerListener.handlerFailedCode,
                                               reason: "the handler threw: \(error)"))
            }
        }
        var head = head
        head.metadata.append(BrokerListener.subscriberKey, node.id)
        let response: UnaryResponse
        do {
            response = try await client.unary(to: node.address, head: head, message: message.body,
                                              deadline: Timestamp.now.advanced(by: configuration.deliveryTimeout))
        } catch {
            switch error.code {
            case .connectFailed:
                await removeGone(node, topic: topic)
                return .gone
            case .notProcessed:
                // Its listener is stopping (and deregistering it): not there for this message.
                cache.remove(topic, nodeID: node.id)
                return .gone
            default:
                return .failed(DeliveryFailure(subscriberID: node.id, address: node.address, queue: queue,
                                               reason: "no acknowledgment (the handler may have run): \(error)"))
            }
        }
        switch response.head.status {
        case .ok:
            return .delivered
        case .nack(_, BrokerListener.notFoundCode, _):
            await removeGone(node, topic: topic)
            return .gone
        case .nack(_, let code, let text), .error(let code, let text):
            return .failed(DeliveryFailure(subscriberID: node.id, address: node.address, queue: queue, code: code,
                                           reason: code == BrokerListener.handlerFailedCode ? "the handler threw: \(text)" : text))
        }
    }

    /// Forgets a subscriber found gone, here and in the registry (its process cannot renew or remove it).
    private func removeGone(_ node: Node, topic: String) async {
        cache.remove(topic, nodeID: node.id)
        do {
            try await registry.deregister(Service(name: Self.serviceName(topic), nodes: [node]))
        } catch {
            configuration.logger.debug("removing a gone subscriber failed", metadata: ["node": "\(node.id)", "error": "\(error)"])
        }
        configuration.logger.debug("skipped a gone subscriber", metadata: ["topic": "\(topic)", "node": "\(node.id)", "address": "\(node.address)"])
    }

    static func microseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        if c.seconds < 0 { return 1 }
        return max(1, UInt64(c.seconds) * 1_000_000 + UInt64(c.attoseconds / 1_000_000_000_000))
    }
}
