public import MicroCore
internal import MicroRPC
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
        let request = Request(service: Self.deliveryService, endpoint: topic, contentType: message.contentType ?? ContentType.raw,
                              body: message.body, metadata: metadata)
        let tally = await DeliveryTally.run(plan) { node in await self.deliver(message, request: request, topic: topic, to: node) }
        return try tally.result(topic: topic)
    }

    /// One delivery attempt: directly to a subscription of this broker, else a unary call (through the RPC
    /// client's one call path, no retry: at most once) to the node's listener.
    nonisolated(nonsending) func deliver(_ message: BrokerMessage, request: Request, topic: String, to node: Node) async -> DeliveryOutcome {
        let queue = node.metadata[Self.queueMetadataKey]
        if let local = listener.subscription(node.id) {
            do {
                try await local.handler(message)
                return .delivered
            } catch {
                return .failed(DeliveryFailure(subscriberID: node.id, queue: queue, code: .internalError, reason: "the handler threw: \(error)"))
            }
        }
        var request = request
        request.metadata.append(BrokerListener.subscriberKey, node.id)
        do {
            _ = try await rpc.call(request, options: CallOptions(timeout: configuration.deliveryTimeout, retries: 0, address: node.address))
            return .delivered
        } catch let error as RPCError {
            switch (error.cause as? TransportError)?.code {
            case .connectFailed?:
                await removeGone(node, topic: topic)
                return .gone
            case .notProcessed?:
                // Its listener is stopping (and deregistering it): not there for this message.
                cache.remove(topic, nodeID: node.id)
                return .gone
            default:
                break
            }
            if error.workNotStarted && (error.code == .notFound || error.code == .unimplemented) {
                await removeGone(node, topic: topic)
                return .gone
            }
            let answered = error.cause == nil  // a status from the subscriber, not a transport failure
            return .failed(DeliveryFailure(subscriberID: node.id, address: node.address, queue: queue, code: answered ? error.code : nil,
                                           reason: !answered ? "no acknowledgment (the handler may have run): \(error.message)"
                                                   : error.code == .internalError ? "the handler threw: \(error.message)" : error.message))
        } catch {
            return .failed(DeliveryFailure(subscriberID: node.id, address: node.address, queue: queue, reason: "\(error)"))
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
}
