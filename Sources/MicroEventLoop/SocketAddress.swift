internal import CLibUV

/// An IPv4 or IPv6 address with a port.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The numeric host, e.g. "127.0.0.1" or "::1".
    public let host: String
    public let port: Int

    /// Parses a numeric host (IPv4 or IPv6; "localhost" means 127.0.0.1) and a port.
    public init(host: String, port: Int) throws(UVError) {
        guard (0...65535).contains(port) else { throw UVError(code: Int32(UV_EINVAL.rawValue), operation: "address port \(port)") }
        let h = host == "localhost" ? "127.0.0.1" : host
        var storage = sockaddr_storage()
        try Self.fill(&storage, host: h, port: port)
        self.host = h
        self.port = port
    }

    /// Parses "host:port" or "[v6]:port".
    public init(_ string: String) throws(UVError) {
        let bad = UVError(code: Int32(UV_EINVAL.rawValue), operation: "address \"\(string)\"")
        var hostPart: Substring
        var portPart: Substring
        if string.hasPrefix("["), let close = string.firstIndex(of: "]") {
            hostPart = string[string.index(after: string.startIndex)..<close]
            let rest = string[string.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad }
            portPart = rest.dropFirst()
        } else {
            guard let colon = string.lastIndex(of: ":") else { throw bad }
            hostPart = string[..<colon]
            portPart = string[string.index(after: colon)...]
        }
        if hostPart.isEmpty { hostPart = "127.0.0.1" }
        guard let port = Int(portPart) else { throw bad }
        try self.init(host: String(hostPart), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    var isIPv6: Bool { host.contains(":") }

    static func fill(_ storage: inout sockaddr_storage, host: String, port: Int) throws(UVError) {
        let rc: Int32 = withUnsafeMutableBytes(of: &storage) { raw in
            if host.contains(":") {
                return uv_ip6_addr(host, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in6.self))
            }
            return uv_ip4_addr(host, Int32(port), raw.baseAddress!.assumingMemoryBound(to: sockaddr_in.self))
        }
        try uvCheck(rc, "address \(host)")
    }

    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = sockaddr_storage()
        try! Self.fill(&storage, host: host, port: port)
        let len = socklen_t(isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        return withUnsafeBytes(of: &storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), len)
        }
    }

    /// Reads an address that libuv filled in (getsockname / getpeername).
    static func from(_ storage: UnsafePointer<sockaddr_storage>) -> SocketAddress? {
        var buf = [CChar](repeating: 0, count: 64)
        let family = Int32(storage.pointee.ss_family)
        return storage.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> SocketAddress? in
            if family == AF_INET {
                return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    guard uv_ip4_name(sin, &buf, buf.count) == 0 else { return nil }
                    let port = Int(UInt16(bigEndian: sin.pointee.sin_port))
                    return try? SocketAddress(host: String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: port)
                }
            } else if family == AF_INET6 {
                return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    guard uv_ip6_name(sin, &buf, buf.count) == 0 else { return nil }
                    let port = Int(UInt16(bigEndian: sin.pointee.sin6_port))
                    return try? SocketAddress(host: String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: port)
                }
            }
            return nil
        }
    }
}
