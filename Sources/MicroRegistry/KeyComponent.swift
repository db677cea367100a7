internal import MicroCore
/// Makes a service name or node id safe as one path component or key segment (the local registry's file names,
/// etcd keys): letters, digits, `-`, `_` and `.` stay (a leading `.` does not); every other byte becomes `%XX`.
func escapeKeyComponent(_ name: String) -> String {
    var out = ""
    for (i, b) in name.utf8.enumerated() {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            out.unicodeScalars.append(UnicodeScalar(b))
        case UInt8(ascii: ".") where i > 0:
            out.unicodeScalars.append(UnicodeScalar(b))
        default:
            let hex = String(b, radix: 16, uppercase: true)
            out += hex.count == 1 ? "%0" + hex : "%" + hex
        }
    }
    return out
}

/// Reverses ``escapeKeyComponent(_:)``.
func unescapeKeyComponent(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var it = Array(text.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2, let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16) {
            bytes.append(v)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
