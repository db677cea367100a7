/// The outcome a server reports in RESPONSE and END frames (docs/PROTOCOL.md §6.3).
public enum Status: Equatable, Sendable {
    /// The call succeeded.
    case ok
    /// The call ran (or may have run) and failed with an application code and message.
    case error(code: UInt32, message: String)
    /// The server did not start the work. `restartable`: a retry (on another node) is safe.
    case nack(restartable: Bool, code: UInt32, message: String)
}
