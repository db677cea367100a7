import Glibc
import MicroCore

extension PoolState {
    /// Picks the next node for `next` (see ``Next`` for the rules) and counts it outstanding.
    mutating func pick(for next: PoolNext) throws(SelectorError) -> Node {
        if !next.canaryDecided {
            next.canaryDecided = true
            if let weights = next.canary, !weights.isEmpty, !next.filters.contains(where: { if case .version = $0 { true } else { false } }) {
                next.canaryVersion = chooseCanaryVersion(weights)
            }
        }
        var now: UInt64 = 0
        if ejected > 0 || stale > 0 || lingering > 0 { now = monotonicNanoseconds() }
        if stale > 0 { dropExpiredStale(now: now) }
        if lingering > 0 { endExpiredLingering(now: now) }
        // Relax the rules one by one until some node qualifies: the canary's version, then "not tried yet", then
        // ejection. (A loop over a counter, not an array of rule sets: no allocation per pick.)
        for step in 0..<4 {
            let canary = step == 0
            if canary && next.canaryVersion == nil { continue }
            if let i = choose(next, canaryVersion: canary ? next.canaryVersion : nil, untried: step < 2, healthy: step < 3, now: now) {
                nodes[i].outstanding += 1
                next.remember(nodes[i].node.id)
                next.lastIndex = i
                next.lastGeneration = generation
                return nodes[i].node
            }
        }
        throw .noneAvailable(next.service)
    }

    /// The index of the node to use under these rules, or nil when none qualifies.
    private mutating func choose(_ next: PoolNext, canaryVersion: String?, untried: Bool, healthy: Bool, now: UInt64) -> Int? {
        candidates.removeAll(keepingCapacity: true)
        // Fields are read in place (nodes[i].x): copying a whole slot would retain its strings and dictionaries.
        for i in nodes.indices {
            if let canaryVersion, versions[nodes[i].version].service.version != canaryVersion { continue }
            if !next.filters.isEmpty && !passes(i, next.filters) { continue }
            if untried && next.firstTried != nil && next.hasTried(nodes[i].node.id) { continue }
            if healthy && nodes[i].health.isEjected {
                guard !nodes[i].health.probing, now >= nodes[i].health.ejectedUntil else { continue }
                // Its time is up: this call is the probe that decides its return.
                nodes[i].health.probing = true
                return i
            }
            candidates.append(i)
        }
        let n = candidates.count
        if n == 0 { return nil }
        if n == 1 { return candidates[0] }
        switch next.strategy {
        case .random:
            return candidates[random.below(n)]
        case .roundRobin:
            defer { turn &+= 1 }
            return candidates[turn % n]
        case .leastOutstanding:
            let (a, b) = twoDistinct(n)
            return nodes[b].outstanding < nodes[a].outstanding ? b : a
        case .peakEWMA:
            let (a, b) = twoDistinct(n)
            return cost(b) < cost(a) ? b : a
        case .weighted:
            return smoothWeighted()
        }
    }

    private func passes(_ i: Int, _ filters: [Filter]) -> Bool {
        for filter in filters {
            switch filter {
            case .version(let v):
                if versions[nodes[i].version].service.version != v { return false }
            case .label(let key, let value):
                if nodes[i].node.metadata[key] != value { return false }
            case .endpoint(let name):
                if !versions[nodes[i].version].service.endpoints.contains(where: { $0.name == name }) { return false }
            }
        }
        return true
    }

    /// Two different candidates, at random.
    private mutating func twoDistinct(_ n: Int) -> (Int, Int) {
        let a = random.below(n)
        var b = random.below(n - 1)
        if b >= a { b += 1 }
        return (candidates[a], candidates[b])
    }

    /// Peak-EWMA cost: latency x (outstanding + 1).
    private func cost(_ i: Int) -> Double {
        let latency = nodes[i].ewma > 0 ? nodes[i].ewma : Double(configuration.ewmaDefaultLatency.nanoseconds)
        return latency * Double(nodes[i].outstanding + 1)
    }

    /// Smooth weighted round robin over the candidates (all weights 0: round robin).
    private mutating func smoothWeighted() -> Int {
        var total = 0
        var best = -1
        for i in candidates {
            nodes[i].weightCurrent += nodes[i].weight
            total += nodes[i].weight
            if best < 0 || nodes[i].weightCurrent > nodes[best].weightCurrent { best = i }
        }
        if total == 0 {
            defer { turn &+= 1 }
            return candidates[turn % candidates.count]
        }
        nodes[best].weightCurrent -= total
        return best
    }

    /// Smooth weighted round robin over the versions with nodes and a positive weight; nil when none qualifies.
    private mutating func chooseCanaryVersion(_ weights: [String: Int]) -> String? {
        var total = 0
        var best = -1
        for v in versions.indices {
            guard versions[v].nodeCount > 0 else { continue }
            let w = max(0, weights[versions[v].service.version] ?? 0)
            guard w > 0 else { continue }
            versions[v].canaryCurrent += w
            total += w
            if best < 0 || versions[v].canaryCurrent > versions[best].canaryCurrent { best = v }
        }
        guard best >= 0 else { return nil }
        versions[best].canaryCurrent -= total
        return versions[best].service.version
    }

    // MARK: - Outcomes

    /// Ends the call to node `id` that `pick` counted, and learns from its outcome.
    mutating func mark(_ id: String, outcome: Outcome) {
        guard let i = indexByID[id] else { return }
        mark(at: i, outcome: outcome)
    }

    /// ``mark(_:outcome:)`` for the node at index `i`.
    mutating func mark(at i: Int, outcome: Outcome) {
        if case .superseded(let after) = outcome {
            // Still counted outstanding, for `supersededLinger` times as long as it ran; the slot ends with the node's
            // other lingering ones.
            let now = monotonicNanoseconds()
            observe(i, latency: after, now: now)
            nodes[i].health.probing = false
            if nodes[i].outstanding == 0 { return }
            nodes[i].lingering += 1
            lingering += 1
            nodes[i].lingerUntil = max(nodes[i].lingerUntil, now &+ after.nanoseconds &* Self.supersededLinger)
            return
        }
        if nodes[i].outstanding > 0 { nodes[i].outstanding -= 1 }
        switch outcome {
        case .success(let latency):
            let now = monotonicNanoseconds()
            observe(i, latency: latency, now: now)
            recordSuccess(i, now: now)
        case .failure(let latency):
            if nodes[i].staleUntil != 0 {
                // A stale node is kept only while it answers.
                remove(at: i)
                return
            }
            let now = monotonicNanoseconds()
            observe(i, latency: latency, now: now)
            recordFailure(i, now: now)
        case .ignored:
            // A probe that was abandoned lets the next call probe.
            nodes[i].health.probing = false
        case .held(let duration):
            hold(i, now: monotonicNanoseconds(), for: duration)
        case .superseded:
            break  // handled above
        }
    }

    /// How many times as long as it ran a superseded call stays counted against its node. It lost to a hedge sent
    /// after the observed p95 without answering, so it is in the tail that hedging is for, and a tail call's time
    /// left is not small against the time it ran (a node that answers 50 ms late is 49 ms from answering when it
    /// loses at 1 ms). With 1 (as long again as it ran), a 50 ms slow node on three nodes got 22% of the first
    /// attempts while hedging against 2.6% without, and the hedged p99 was 1.5-2.4x the healthy one; with 8 it got
    /// 5-6% and 1.3-1.8x (`micro bench --hedging`, docs/MIDDLEWARE.md).
    static let supersededLinger: UInt64 = 8

    /// Peak EWMA: a latency above the average replaces it; a lower one moves it by the decay weight.
    private mutating func observe(_ i: Int, latency: Duration, now: UInt64) {
        let rtt = Double(latency.nanoseconds)
        let last = nodes[i].ewmaUpdated
        nodes[i].ewmaUpdated = now
        if last == 0 || rtt > nodes[i].ewma {
            nodes[i].ewma = rtt
            return
        }
        let elapsed = Double(now &- last)
        let w = exp(-elapsed / Double(max(1, configuration.ewmaDecay.nanoseconds)))
        nodes[i].ewma = nodes[i].ewma * w + rtt * (1 - w)
    }
}

/// CLOCK_MONOTONIC in nanoseconds (a vDSO call, no system call).
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
