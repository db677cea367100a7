internal import CLibUV

/// Casts between libuv's handle types, which Swift sees as unrelated structs.
enum UVHandle {
    @inline(__always)
    static func cast<H>(_ p: UnsafeMutablePointer<H>) -> UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_handle_t.self)
    }

    @inline(__always)
    static func stream<H>(_ p: UnsafeMutablePointer<H>) -> UnsafeMutablePointer<uv_stream_t> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_stream_t.self)
    }

    @inline(__always)
    static func tcp<H>(_ p: UnsafeMutablePointer<H>) -> UnsafeMutablePointer<uv_tcp_t> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: uv_tcp_t.self)
    }
}
