internal import CLibUV

/// An error reported by libuv or the operating system, with its libuv code (negative errno) and name.
public struct UVError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// libuv's error code: a negated errno, e.g. `-111` for ECONNREFUSED.
    public let code: Int32
    /// What was being done when the error happened, e.g. "connect".
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// libuv's name for the code, e.g. "ECONNREFUSED".
    public var name: String { String(cString: uv_err_name(code)) }

    public var description: String {
        "\(operation): \(name) (\(String(cString: uv_strerror(code))))"
    }

    public static func == (a: UVError, b: UVError) -> Bool { a.code == b.code }
    public func hash(into h: inout Hasher) { h.combine(code) }

    public static var connectionRefused: Int32 { Int32(UV_ECONNREFUSED.rawValue) }
    public static var connectionReset: Int32 { Int32(UV_ECONNRESET.rawValue) }
    public static var endOfFile: Int32 { Int32(UV_EOF.rawValue) }
    public static var timedOut: Int32 { Int32(UV_ETIMEDOUT.rawValue) }
    public static var canceled: Int32 { Int32(UV_ECANCELED.rawValue) }
    public static var tooManyOpenFiles: Int32 { Int32(UV_EMFILE.rawValue) }
    public static var brokenPipe: Int32 { Int32(UV_EPIPE.rawValue) }
    public static var addressInUse: Int32 { Int32(UV_EADDRINUSE.rawValue) }
}

@inline(__always)
func uvCheck(_ rc: Int32, _ operation: String) throws(UVError) {
    if rc < 0 { throw UVError(code: rc, operation: operation) }
}
