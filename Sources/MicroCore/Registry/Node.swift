/// One running instance of a service.
public struct Node: Sendable, Hashable, Codable {
    /// Unique within the service (e.g. `greeter-5f3a...`).
    public var id: String
    /// Where it listens, `host:port`.
    public var address: String
    /// Labels a selector may filter or weight by (e.g. `datacenter`, `weight`).
    public var metadata: [String: String]

    public init(id: String, address: String, metadata: [String: String] = [:]) {
        self.id = id
        self.address = address
        self.metadata = metadata
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        address = try c.decodeIfPresent(String.self, forKey: .address) ?? ""
        metadata = try c.decodeIfPresent([String: String].self, forKey: .metadata) ?? [:]
    }
}
