/// Ordered key/value pairs sent with a request or response (docs/PROTOCOL.md §6.1). Keys are compared
/// case-insensitively by ``subscript(_:)``; duplicates are kept in order.
public struct Metadata: Equatable, Sendable, ExpressibleByDictionaryLiteral, Sequence {
    public var pairs: [(key: String, value: String)]

    @inlinable
    public init() { pairs = [] }
    public init(dictionaryLiteral elements: (String, String)...) {
        // `[:]` is every default argument: no mapping (and no reference counting) for it.
        pairs = elements.isEmpty ? [] : elements.map { (key: $0.0, value: $0.1) }
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    /// The first value for `key` (ASCII case-insensitive); setting replaces every value for it.
    public subscript(_ key: String) -> String? {
        get { pairs.first { Self.sameKey($0.key, key) }?.value }
        set {
            pairs.removeAll { Self.sameKey($0.key, key) }
            if let newValue { pairs.append((key: key, value: newValue)) }
        }
    }

    /// ASCII case-insensitive, byte-wise comparison, without allocating.
    public static func sameKey(_ a: String, _ b: String) -> Bool {
        var i = a.utf8.makeIterator()
        var j = b.utf8.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return true
            case (let x?, let y?):
                if x == y { continue }
                let lx = (x >= 65 && x <= 90) ? x + 32 : x
                let ly = (y >= 65 && y <= 90) ? y + 32 : y
                if lx != ly { return false }
            default: return false
            }
        }
    }

    public mutating func append(_ key: String, _ value: String) { pairs.append((key: key, value: value)) }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> { pairs.makeIterator() }

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.pairs.count == b.pairs.count && zip(a.pairs, b.pairs).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}
