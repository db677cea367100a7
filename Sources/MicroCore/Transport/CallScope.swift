/// Where the layer above the transport keeps what the call a task serves knows (its deadline), for calls that
/// task makes downstream.
///
/// The libuv transport binds one scope per worker task for the worker's whole life, and a worker runs one call
/// at a time, so setting the deadline per call costs no task-local binding. Other paths bind a fresh scope per
/// stream. Not promised: an unstructured `Task` a handler starts (which inherits task-locals) sees its own
/// call's deadline once that call ended; it sees whatever the worker's next call set.
public final class CallScope: @unchecked Sendable {
    /// The deadline of the call being served; written and read by the serving task only.
    public var deadline: Timestamp? {
        get { storedDeadline }
        set { storedDeadline = newValue }
    }
    /// Behind accessors of this module, which keep the attribute: no dynamic exclusivity check per access (two
    /// per call on the server, one on the client, counted; an access made in another module kept its check).
    @exclusivity(unchecked) private var storedDeadline: Timestamp?

    public init(deadline: Timestamp? = nil) { storedDeadline = deadline }

    /// The scope of the call the current task serves, if any.
    @TaskLocal public static var current: CallScope?
}
