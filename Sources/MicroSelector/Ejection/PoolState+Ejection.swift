import MicroCore

extension PoolState {
    /// Records a success of node `i`: a probing node comes back.
    mutating func recordSuccess(_ i: Int, now: UInt64) {
        nodes[i].health.consecutiveFailures = 0
        countInWindow(i, failed: false)
        if nodes[i].health.probing {
            nodes[i].health = NodeHealth(ejections: nodes[i].health.ejections, returnedAt: now)
            ejected -= 1
        }
    }

    /// Records a failure of node `i`: a failed probe ejects it again for longer; otherwise it is ejected after
    /// too many failures in a row or a low success rate, if the cap on ejected nodes allows.
    mutating func recordFailure(_ i: Int, now: UInt64) {
        let policy = configuration.ejection
        nodes[i].health.consecutiveFailures += 1
        let lowRate = countInWindow(i, failed: true)
        guard policy.enabled else { return }
        if nodes[i].health.probing {
            nodes[i].health.probing = false
            eject(i, now: now, counted: true)
        } else if !nodes[i].health.isEjected,
                  nodes[i].health.consecutiveFailures >= policy.consecutiveFailures || lowRate,
                  ejected < maxEjected {
            eject(i, now: now, counted: false)
        }
    }

    /// Keeps node `i` out of rotation for `duration` (its caller's breaker is open), within the cap on ejected
    /// nodes; when it comes back, its first call is a probe, as after an ejection. Counts no failure.
    mutating func hold(_ i: Int, now: UInt64, for duration: Duration) {
        nodes[i].health.probing = false
        let until = now + max(1, duration.nanoseconds)
        if nodes[i].health.isEjected {
            nodes[i].health.ejectedUntil = max(nodes[i].health.ejectedUntil, until)
        } else if ejected < maxEjected {
            nodes[i].health.ejectedUntil = until
            ejected += 1
        }
    }

    /// How many nodes may be out at once: the share, rounded down, and never all.
    var maxEjected: Int {
        min(Int(Double(nodes.count) * configuration.ejection.maxEjectedShare), nodes.count - 1)
    }

    private mutating func eject(_ i: Int, now: UInt64, counted: Bool) {
        let policy = configuration.ejection
        var h = nodes[i].health
        if h.returnedAt != 0 && now - h.returnedAt > policy.maxTime.nanoseconds { h.ejections = 0 }
        h.ejections += 1
        let base = Double(policy.baseTime.nanoseconds) * Double(h.ejections)
        let jittered = base * (1 - policy.jitter + 2 * policy.jitter * random.unit())
        let length = UInt64(min(jittered, Double(policy.maxTime.nanoseconds)))
        h.ejectedUntil = now + max(1, length)
        h.consecutiveFailures = 0
        h.windowCalls = 0
        h.windowFailures = 0
        nodes[i].health = h
        if !counted { ejected += 1 }
    }

    /// Counts a call in node `i`'s window; returns whether its success rate is now below the threshold.
    @discardableResult
    private mutating func countInWindow(_ i: Int, failed: Bool) -> Bool {
        let policy = configuration.ejection
        var h = nodes[i].health
        h.windowCalls += 1
        if failed { h.windowFailures += 1 }
        var low = false
        if policy.successRateThreshold > 0 && h.windowCalls >= policy.successRateMinimumCalls {
            let rate = Double(h.windowCalls - h.windowFailures) / Double(h.windowCalls)
            low = rate < policy.successRateThreshold
        }
        if h.windowCalls >= policy.successRateWindow {
            h.windowCalls = 0
            h.windowFailures = 0
        }
        nodes[i].health = h
        return low
    }
}

extension Duration {
    /// Whole nanoseconds (negative durations count as 0).
    var nanoseconds: UInt64 {
        let (s, a) = components
        guard s >= 0, a >= 0 else { return 0 }
        return UInt64(s) &* 1_000_000_000 &+ UInt64(a / 1_000_000_000)
    }
}
