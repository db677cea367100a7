extension Duration {
    /// A duration written as people write them on command lines and in headers: `1.5`, `1.5s`, `300ms`, `250us`,
    /// `2m` (a bare number is seconds). Nil for anything else, zero, negative or not finite.
    public init?(text: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("s", 1), ("m", 60)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, unitScale) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = unitScale
            break
        }
        guard let v = Double(number), v > 0, v.isFinite, v * scale < 1e9 else { return nil }
        self = .nanoseconds(Int64(v * scale * 1e9))
    }
}
