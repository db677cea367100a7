/// Why a registry operation failed.
public enum RegistryError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No node of the service is registered.
    case notFound(String)
    /// The registry could not be reached or did not answer in time; the operation may be retried.
    case unavailable(String)
    /// The registry answered something this client cannot use.
    case badResponse(String)
    /// The service or options cannot be registered (e.g. an empty name, a node without id).
    case invalid(String)
    /// The configuration (flags, environment) names an unknown registry or a bad address.
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .notFound(let name): "service \(name) not found"
        case .unavailable(let why): "registry unavailable: \(why)"
        case .badResponse(let why): "bad registry response: \(why)"
        case .invalid(let why): "invalid registration: \(why)"
        case .invalidConfiguration(let why): "invalid registry configuration: \(why)"
        }
    }
}
