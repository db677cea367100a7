internal import MicroInMemory
public import MicroCore
/// Which registry to use and where it is, as go-micro users set it: `--registry etcd`,
/// `--registry_address 127.0.0.1:2379` (comma-separated for a cluster), or `MICRO_REGISTRY`,
/// `MICRO_REGISTRY_ADDRESS`. Flags win over the environment. The default is ``Kind/local``.
public struct RegistryConfiguration: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// In this process only (``MemoryRegistry/shared``).
        case memory
        /// Every process on this machine, no server (``LocalRegistry``).
        case local
        /// An etcd cluster (``EtcdRegistry``).
        case etcd
    }

    public var kind: Kind = .local
    /// `host:port` of the registry's servers (etcd: client URLs, `http://` allowed); empty: the kind's default.
    public var addresses: [String] = []
    /// For ``Kind/local``: the directory (`$MICRO_REGISTRY_DIR` also sets it).
    public var directory: String? = nil

    public init(kind: Kind = .local, addresses: [String] = [], directory: String? = nil) {
        self.kind = kind
        self.addresses = addresses
        self.directory = directory
    }

    /// Reads `--registry`, `--registry_address` (also `--flag=value` forms) from `arguments` and
    /// `MICRO_REGISTRY`, `MICRO_REGISTRY_ADDRESS`, `MICRO_REGISTRY_DIR` from `environment`. Other arguments are
    /// ignored. Throws ``RegistryError/invalidConfiguration(_:)`` for an unknown kind or a flag without value.
    public static func parse(arguments: [String], environment: [String: String]) throws -> RegistryConfiguration {
        var kindText = environment["MICRO_REGISTRY"]
        var addressText = environment["MICRO_REGISTRY_ADDRESS"]
        var i = 0
        while i < arguments.count {
            let arg = arguments[i]
            for (flag, apply) in [("--registry", { (v: String) in kindText = v }),
                                  ("--registry_address", { (v: String) in addressText = v })] as [(String, (String) -> Void)] {
                if arg == flag || arg == "-" + flag.dropFirst(2) {
                    guard i + 1 < arguments.count else { throw RegistryError.invalidConfiguration("\(flag) needs a value") }
                    apply(arguments[i + 1])
                    i += 1
                } else if arg.hasPrefix(flag + "=") {
                    apply(String(arg.dropFirst(flag.count + 1)))
                }
            }
            i += 1
        }
        var config = RegistryConfiguration()
        if let kindText, !kindText.isEmpty {
            guard let kind = Kind(rawValue: kindText.lowercased()) else {
                throw RegistryError.invalidConfiguration("unknown registry \(kindText) (memory, local or etcd)")
            }
            config.kind = kind
        }
        if let addressText {
            config.addresses = addressText.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        }
        if let dir = environment["MICRO_REGISTRY_DIR"], !dir.isEmpty { config.directory = dir }
        return config
    }

    /// The registry this configuration names. For etcd the addresses default to `127.0.0.1:2379`.
    public func makeRegistry() throws -> any Registry {
        switch kind {
        case .memory:
            return MemoryRegistry.shared
        case .local:
            return LocalRegistry(directory: directory ?? addresses.first)
        case .etcd:
            var etcd = EtcdConfiguration()
            if !addresses.isEmpty { etcd.endpoints = addresses }
            return try EtcdRegistry(configuration: etcd)
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
