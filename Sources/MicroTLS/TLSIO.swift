internal import COpenSSL

/// The BIO between ``TLSSession``s and the caller's buffers: it stores nothing between calls. Ciphertext is read
/// straight from the bytes passed to ``TLSSession/receive(_:scratch:deliver:emit:)`` and written into the
/// caller's scratch buffer, so an idle connection holds no BIO memory at all (a memory BIO pair costs ~1.8 KB
/// once used, and freeing it while idle leaves holes in the heap).
///
/// Share one per thread (one per event loop) among every session on it; a session made without one gets its
/// own. Thread-confined, like the sessions using it. Calls may nest (a session's `deliver` may drive another
/// session on the same thread): each call saves and restores the state it replaces.
public final class TLSIO {
    /// The BIO (one reference ours; each session's SSL holds another). Its state (`micro_io_state`: where it reads
    /// and writes during one SSL call, empty between calls) is allocated with it and freed with its last reference;
    /// it is confined to the owning thread.
    let bio: OpaquePointer

    /// One method for every such BIO of the process (never freed: BIOs may outlive any one owner).
    nonisolated(unsafe) private static let method: OpaquePointer? = micro_io_method_new()

    public init() {
        guard let method = Self.method, let bio = BIO_new(method) else {
            fatalError("swift-micro: cannot create the TLS BIO: \(TLSContext.drainErrors())")
        }
        self.bio = bio
    }

    deinit { BIO_free(bio) }

    /// Runs one SSL call with `input` to read and `output` to write into, through the BIO whose state is `state`;
    /// returns what it wrote (valid until the output buffer is reused) along with `body`'s result.
    @inline(__always)
    static func run<R>(_ state: UnsafeMutablePointer<micro_io_state>, input: inout UnsafeRawBufferPointer,
                       output: UnsafeMutableRawBufferPointer, _ body: () -> R) -> (R, Int) {
        let saved = state.pointee
        state.pointee = micro_io_state(
            in: input.baseAddress?.assumingMemoryBound(to: UInt8.self), in_len: input.count,
            out: output.baseAddress?.assumingMemoryBound(to: UInt8.self), out_cap: output.count, out_len: 0)
        let result = body()
        let consumed = input.count - state.pointee.in_len
        let written = state.pointee.out_len
        state.pointee = saved
        input = UnsafeRawBufferPointer(rebasing: input[consumed...])
        return (result, written)
    }
}
