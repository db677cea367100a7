/// Narrows the nodes of a service for one call (go-micro's `selector.Filter*`).
public enum Filter: Sendable, Hashable {
    /// Nodes registered with this version.
    case version(String)
    /// Nodes whose metadata has `key` set to `value` (e.g. `datacenter` = `eu-1`).
    case label(String, String)
    /// Nodes whose service version offers this endpoint (e.g. `Greeter.Hello`).
    case endpoint(String)
}
