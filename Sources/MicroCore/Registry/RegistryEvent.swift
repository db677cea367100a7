/// A change seen by a watch. `service` carries the nodes the change is about (for `.delete`, the nodes that
/// left), not necessarily every node of the service.
///
/// Two kinds mark a break in a watch that reconnects on its own (etcd's): `.interrupted` when it lost its stream
/// (events may be missed from here), `.resynced` once it read everything again and watches on. Between the two
/// come the differences that read found, which may include nodes that left only in the registry's view (a
/// cluster that came back without its data): a consumer may hold deletions until `.resynced` and judge them then
/// (the registry selector keeps serving such nodes for a while; see docs/DISCOVERY.md). Both markers carry a
/// service without name or nodes.
public struct RegistryEvent: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case create, update, delete
        /// The watch lost its stream; what follows until `.resynced` is the difference found by reading again.
        case interrupted
        /// The watch read everything again and is live.
        case resynced
    }

    public var kind: Kind
    public var service: Service

    public init(kind: Kind, service: Service) {
        self.kind = kind
        self.service = service
    }

    /// The marker of a watch that lost its stream.
    public static let interrupted = RegistryEvent(kind: .interrupted, service: Service(name: "", version: ""))
    /// The marker of a watch that is live again after `.interrupted`.
    public static let resynced = RegistryEvent(kind: .resynced, service: Service(name: "", version: ""))
}
