/// Why a broker operation failed.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// One or more deliveries failed: a handler threw, or the subscriber did not answer in time, or the
        /// connection broke while delivering (then the handler may or may not have run). See ``failures``.
        case deliveryFailed
        /// The broker was closed.
        case closed
        /// The topic is empty, or too long for the wire.
        case invalidTopic
        /// The registry could not be read or written.
        case registryUnavailable
        /// The broker's listener could not start.
        case listenFailed
    }

    public var code: Code
    public var message: String
    /// The failed deliveries (for `deliveryFailed`).
    public var failures: [DeliveryFailure]
    /// Deliveries that succeeded alongside the failures (for `deliveryFailed`).
    public var delivered: Int

    public init(_ code: Code, _ message: String, failures: [DeliveryFailure] = [], delivered: Int = 0) {
        self.code = code
        self.message = message
        self.failures = failures
        self.delivered = delivered
    }

    public var description: String { "\(code): \(message)" }
}

/// One subscriber that did not acknowledge a message.
public struct DeliveryFailure: Sendable, Hashable, CustomStringConvertible {
    public var subscriberID: String
    /// Where the subscriber listens (nil for a subscriber in this process reached without the network).
    public var address: String?
    public var queue: String?
    /// The status code the subscriber answered (`internalError` for a handler's error), nil when none came.
    public var code: StatusCode?
    /// What went wrong: the handler's error, or why no answer came.
    public var reason: String

    public init(subscriberID: String, address: String? = nil, queue: String? = nil, code: StatusCode? = nil, reason: String) {
        self.subscriberID = subscriberID
        self.address = address
        self.queue = queue
        self.code = code
        self.reason = reason
    }

    public var description: String {
        "subscriber \(subscriberID)\(address.map { " at \($0)" } ?? ""): \(reason)"
    }
}
