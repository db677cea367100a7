/// Options of ``Registry/watch(_:)``.
public struct WatchOptions: Sendable, Hashable {
    /// Only events of this service; nil: every service.
    public var service: String?

    public init(service: String? = nil) { self.service = service }
}
