/// Who may call which endpoint: a rule per endpoint (exact, or a prefix ending in `*`), else the default rule.
/// The most specific match wins: an exact name, then the longest prefix.
public struct AuthPolicy: Sendable {
    public enum Rule: Sendable, Hashable {
        /// Anyone, authenticated or not.
        case open
        /// Any authenticated caller.
        case authenticated
        /// Only these identities (by ``PeerIdentity/name``).
        case allow(Set<String>)
    }

    public var defaultRule: Rule
    /// Rules by endpoint ("Greeter.Hello") or prefix ("Admin.*", "*").
    public var endpoints: [String: Rule]

    public init(defaultRule: Rule = .authenticated, endpoints: [String: Rule] = [:]) {
        self.defaultRule = defaultRule
        self.endpoints = endpoints
    }

    /// The rule of `endpoint`.
    public func rule(for endpoint: String) -> Rule {
        if let exact = endpoints[endpoint] { return exact }
        var best: (length: Int, rule: Rule)?
        for (pattern, rule) in endpoints where pattern.hasSuffix("*") {
            let prefix = pattern.dropLast()
            if endpoint.hasPrefix(prefix), prefix.count >= (best?.length ?? -1) { best = (prefix.count, rule) }
        }
        return best?.rule ?? defaultRule
    }
}
