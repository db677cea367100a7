/// A change seen by a watch. `service` carries the nodes the change is about (for `.delete`, the nodes that
/// left), not necessarily every node of the service.
public struct RegistryEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case create, update, delete
    }

    public var kind: Kind
    public var service: Service

    public init(kind: Kind, service: Service) {
        self.kind = kind
        self.service = service
    }
}
