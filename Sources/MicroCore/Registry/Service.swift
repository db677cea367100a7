/// A named service in one version, with the nodes that serve it (as go-micro's `registry.Service`).
///
/// A registry returns one `Service` per version of a name; the nodes of all versions together make up the service.
public struct Service: Sendable, Hashable, Codable {
    public var name: String
    public var version: String
    public var metadata: [String: String]
    public var endpoints: [Endpoint]
    public var nodes: [Node]

    public init(name: String, version: String = "latest", metadata: [String: String] = [:],
                endpoints: [Endpoint] = [], nodes: [Node] = []) {
        self.name = name
        self.version = version
        self.metadata = metadata
        self.endpoints = endpoints
        self.nodes = nodes
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        metadata = try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:]
        endpoints = try c.decodeIfPresent([Endpoint].self, forKey: .endpoints) ?? []
        nodes = try c.decodeIfPresent([Node].self, forKey: .nodes) ?? []
    }
}
