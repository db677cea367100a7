/// The nodes for one call and its retries, from ``Selector/select(_:options:)``.
///
/// Each ``next()`` hands out a node, preferring nodes this `Next` has not returned yet (so a retry lands on another
/// node). Selectors subclass it (the registry selector's picks from its pool without allocating), or make one from
/// a closure with ``init(service:pick:)``. Not thread-safe: use it from one task.
open class Next {
    /// The service this `Next` selects for.
    public let service: String
    private let pick: (() throws -> Node)?

    /// A `Next` for selectors of your own: each ``next()`` calls `pick`, which should prefer nodes it has not
    /// returned yet (retries go to another node).
    public init(service: String, pick: @escaping () throws -> Node) {
        self.service = service
        self.pick = pick
    }

    /// For subclasses, which override ``next()``.
    public init(service: String) {
        self.service = service
        self.pick = nil
    }

    /// The next node; counted outstanding until marked. Throws ``SelectorError/noneAvailable(_:)`` when the
    /// service has no node that passes the filters.
    open func next() throws -> Node {
        guard let pick else { throw SelectorError.noneAvailable(service) }
        return try pick()
    }

    /// Reports the outcome of a call to `node`, which this `Next` returned: the same as
    /// ``Selector/mark(_:node:outcome:)`` on its selector, without looking the service and the node up. (A
    /// `Next` made from a closure does nothing here: mark through its selector instead.)
    open func mark(_ node: Node, outcome: Outcome) {}

    /// Suspends until the nodes this `Next` picks from may have changed since its last ``next()`` threw, until
    /// `deadline`, or until the task is cancelled, whichever comes first. The client calls it when a call finds no
    /// node and waits for one (wait-for-ready); it then calls ``next()`` again. A `Next` made from a closure polls:
    /// it returns after 50 ms (or at the deadline). Subclasses that learn of changes override it to wake at once.
    open nonisolated(nonsending) func waitForChange(until deadline: Timestamp) async {
        let poll = Timestamp.now.advanced(byNanoseconds: 50_000_000)
        try? await BackgroundExecutor.shared.sleep(until: min(deadline, poll))
    }
}
