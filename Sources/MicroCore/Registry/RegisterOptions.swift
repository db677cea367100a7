/// Options of ``Registry/register(_:options:)``.
public struct RegisterOptions: Sendable, Hashable {
    /// How long the registration lives without renewal; nil: until deregistered.
    public var ttl: Duration?

    public init(ttl: Duration? = nil) { self.ttl = ttl }
}
