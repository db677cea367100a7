/// What happened to one delivery attempt to one subscriber. For broker implementations.
public enum DeliveryOutcome: Sendable {
    /// The subscriber's handler returned.
    case delivered
    /// The subscriber is not there (anymore): skip it, try the next candidate.
    case gone
    case failed(DeliveryFailure)
}

/// Counts of a publish's deliveries. For broker implementations.
public struct DeliveryTally: Sendable {
    public var delivered = 0
    public var skipped = 0
    public var failures: [DeliveryFailure] = []

    public init() {}

    public mutating func add(_ other: DeliveryTally) {
        delivered += other.delivered
        skipped += other.skipped
        failures += other.failures
    }

    /// The publish's result, or the error listing its failures.
    public func result(topic: String) throws(BrokerError) -> PublishResult {
        guard failures.isEmpty else {
            let list = failures.map(\.description).joined(separator: "; ")
            throw BrokerError(.deliveryFailed, "\(failures.count) deliver\(failures.count == 1 ? "y" : "ies") of a message on \(topic) failed (\(delivered) succeeded): \(list)",
                              failures: failures, delivered: delivered)
        }
        return PublishResult(delivered: delivered, skipped: skipped)
    }

    /// Delivers along `plan` (see ``QueuePlan``): each candidate list until one member did not turn out gone.
    /// Lists run concurrently when there are several; a single one runs in the caller's task.
    public static func run<T: Sendable>(_ plan: [[T]], _ deliver: @escaping @Sendable (T) async -> DeliveryOutcome) async -> DeliveryTally {
        if plan.count == 1 { return await runCandidates(plan[0], deliver) }
        return await withTaskGroup(of: DeliveryTally.self) { group in
            for candidates in plan { group.addTask { await runCandidates(candidates, deliver) } }
            var total = DeliveryTally()
            for await t in group { total.add(t) }
            return total
        }
    }

    private static func runCandidates<T: Sendable>(_ candidates: [T], _ deliver: @Sendable (T) async -> DeliveryOutcome) async -> DeliveryTally {
        var tally = DeliveryTally()
        for c in candidates {
            switch await deliver(c) {
            case .delivered:
                tally.delivered += 1
                return tally
            case .gone:
                tally.skipped += 1
            case .failed(let f):
                // At most once: the handler may have run, so no other member gets it.
                tally.failures.append(f)
                return tally
            }
        }
        return tally
    }
}
