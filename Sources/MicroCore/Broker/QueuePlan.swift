/// Who gets a message: every subscriber without a queue group, and one member of each queue group. For broker
/// implementations.
public enum QueuePlan {
    /// One candidate list per delivery, in the subscribers' order: a subscriber without a queue alone; a queue
    /// group's members rotated by `rotation`, so that the first is this message's pick (round robin over
    /// successive messages) and the others are fallbacks should it be gone.
    public static func targets<T>(_ subscribers: [T], queue: (T) -> String?, rotation: Int) -> [[T]] {
        if subscribers.count == 1 { return [subscribers] }
        var plan: [[T]] = []
        var groupIndex: [String: Int] = [:]
        for s in subscribers {
            guard let q = queue(s) else {
                plan.append([s])
                continue
            }
            if let i = groupIndex[q] {
                plan[i].append(s)
            } else {
                groupIndex[q] = plan.count
                plan.append([s])
            }
        }
        if groupIndex.isEmpty { return plan }
        for i in groupIndex.values where plan[i].count > 1 {
            let members = plan[i]
            let start = Int(UInt(bitPattern: rotation) % UInt(members.count))
            plan[i] = Array(members[start...] + members[..<start])
        }
        return plan
    }
}
