internal import MicroCore
import Synchronization

/// The embedded broker's server side: answers each delivery request by running the handler of the
/// subscription it names (request metadata ``subscriberKey``) for the topic in its endpoint.
///
/// Answers: OK once the handler returned; ERROR `internalError` (the handler's error as message) when it threw; a
/// restartable NACK `notFound` when the subscription is not (anymore) here, so that the publisher skips it; a
/// restartable NACK `unimplemented` for a request to another service.
final class BrokerListener: ServerHandler, UnaryHandler {
    /// The request metadata naming the subscription a delivery is for.
    static let subscriberKey = "micro-broker-subscriber"

    struct Local: Sendable {
        let topic: String
        let queue: String?
        let handler: BrokerHandler
    }

    /// This process's subscriptions by id. Guarded by its mutex.
    private let subscriptions = Mutex<[String: Local]>([:])

    func add(_ id: String, _ local: Local) { subscriptions.withLock { $0[id] = local } }
    func remove(_ id: String) { subscriptions.withLock { _ = $0.removeValue(forKey: id) } }
    func removeAll() { subscriptions.withLock { $0 = [:] } }
    func subscription(_ id: String) -> Local? { subscriptions.withLock { $0[id] } }
    var count: Int { subscriptions.withLock { $0.count } }

    func unaryHandler(for head: RequestHead) -> (any UnaryHandler)? { self }

    func handleStream(_ stream: ServerStream) async { await serveAsStream(stream) }

    nonisolated(nonsending) func handle(_ request: consuming UnaryRequest) async -> UnaryReply {
        let head = request.head
        guard head.service == EmbeddedBroker.deliveryService else {
            return UnaryReply(head: ResponseHead(status: .nack(restartable: true, .unimplemented, "service \"\(head.service)\" is not served here (a broker listener)")), message: nil)
        }
        guard let id = head.metadata[Self.subscriberKey], let local = subscription(id), local.topic == head.endpoint else {
            return UnaryReply(head: ResponseHead(status: .nack(restartable: true, .notFound,
                                                               "no subscription \(head.metadata[Self.subscriberKey] ?? "?") to \(head.endpoint) here")),
                              message: nil)
        }
        var header: [String: String] = [:]
        for (k, v) in head.metadata where k != Self.subscriberKey { header[k] = v }
        do {
            try await local.handler(BrokerMessage(header: header, body: request.message))
            return UnaryReply(message: [])
        } catch {
            return UnaryReply(head: ResponseHead(status: .error(.internalError, "\(error)")), message: nil)
        }
    }
}
