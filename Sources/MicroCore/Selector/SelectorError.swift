/// Why no node could be selected.
public enum SelectorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The service has no node that passes the filters.
    case noneAvailable(String)

    public var description: String {
        switch self {
        case .noneAvailable(let service): "no node of \(service) available"
        }
    }
}
