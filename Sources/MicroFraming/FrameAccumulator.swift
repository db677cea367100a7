#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into length-prefixed frames, decoding in place.
///
/// Every frame starts with a 4-byte big-endian payload length followed by `headerSize - 4` more header
/// bytes: 10 in all for the multiplexed protocol (``FrameHeader``), 4 for the plain length-prefixed mode.
/// Complete frames are handed out straight from the caller's buffer; only the tail of a frame that is still
/// incomplete is copied, into a buffer that exists only while that frame is incomplete (so an idle
/// connection holds none). For a large frame the rest can be read straight into that buffer
/// (``directReadBuffer(minimum:)``), so its bytes are copied once at most, plus the moves of its growth.
///
/// That buffer grows with the bytes that arrived, never by the length a header announces: its first size is
/// what arrived (at least ``initialReservation``, at most the frame), and it at most doubles each time more
/// is needed. A peer that announces a 16 MiB frame and sends 16 bytes makes it hold about 4 KiB.
///
/// A frame whose payload length exceeds ``maxPayload`` is a connection error, and so is a buffer that cannot
/// be allocated (RESOURCE_LIMIT): ``feed(_:_:)`` throws and the accumulator must not be fed again.
public struct FrameAccumulator: ~Copyable {
    // 32-bit fields: an accumulator lives in every connection, idle ones included.
    private let header32: UInt32
    private var maxPayload32: UInt32
    private var pending: UnsafeMutableRawPointer?
    private var pendingCount32: UInt32 = 0
    private var pendingCapacity32: UInt32 = 0

    /// Bytes of header in front of each payload (4 or more; the first 4 are the payload length).
    public var headerSize: Int { Int(header32) }
    /// The largest payload accepted (at most 2^32 - 1 - headerSize).
    public var maxPayload: Int {
        get { Int(maxPayload32) }
        set { maxPayload32 = UInt32(clamping: newValue) }
    }
    private var pendingCount: Int {
        get { Int(pendingCount32) }
        set { pendingCount32 = UInt32(newValue) }
    }
    private var pendingCapacity: Int {
        get { Int(pendingCapacity32) }
        set { pendingCapacity32 = UInt32(newValue) }
    }

    /// The smallest buffer made for an incomplete frame (unless the frame is smaller).
    public static let initialReservation = 4096

    public init(headerSize: Int = FrameHeader.size, maxPayload: Int) {
        precondition(headerSize >= 4 && headerSize < 256)
        header32 = UInt32(headerSize)
        maxPayload32 = UInt32(clamping: min(maxPayload, Int(UInt32.max) - headerSize))
    }

    deinit { free(pending) }

    /// Bytes held for an incomplete frame.
    public var bufferedByteCount: Int { pendingCount }
    /// Bytes of memory reserved for the incomplete frame (0 when none).
    public var reservedByteCount: Int { pendingCapacity }

    /// Bytes still missing from the incomplete frame, if its header is complete.
    private func missingBytes() -> Int? {
        guard pendingCount >= headerSize, let pending else { return nil }
        let length = Int(UInt32(bigEndian: pending.loadUnaligned(as: UInt32.self)))
        return headerSize + length - pendingCount
    }

    /// Feeds bytes read from the stream. `onFrame` gets each complete frame, header included; the bytes are
    /// valid only during the call. It returns `false` to stop: the remaining input is then dropped (the
    /// caller is closing the connection).
    public mutating func feed(
        _ input: UnsafeRawBufferPointer,
        _ onFrame: (UnsafeRawBufferPointer) -> Bool
    ) throws(FramingError) {
        guard var p = input.baseAddress, input.count > 0 else { return }
        var left = input.count
        if pendingCount > 0 {
            // Complete the pending frame first.
            if pendingCount < headerSize {
                let take = min(headerSize - pendingCount, left)
                try append(p, take, frame: headerSize)
                p += take
                left -= take
                if pendingCount < headerSize { return }
            }
            let need = try frameSize(pending!)
            let take = min(need - pendingCount, left)
            try append(p, take, frame: need)
            p += take
            left -= take
            if pendingCount < need { return }
            let keepGoing = onFrame(UnsafeRawBufferPointer(start: pending, count: need))
            releasePending()
            if !keepGoing { return }
        }
        // Hand out every complete frame in place.
        while left >= headerSize {
            let size = try frameSize(UnsafeRawPointer(p))
            if size > left { break }
            if !onFrame(UnsafeRawBufferPointer(start: p, count: size)) { return }
            p += size
            left -= size
        }
        if left > 0 {
            let frame = left >= headerSize ? try frameSize(UnsafeRawPointer(p)) : headerSize
            try append(p, left, frame: frame)
        }
    }

    /// When the incomplete frame still misses at least `minimum` bytes, the free region of the pending buffer
    /// where the next of them go (grown first if less than `minimum` is free, to at most double the bytes that
    /// arrived): the caller may read straight into it and then call ``commitDirectRead(_:_:)``. Nil when not worth
    /// it or not yet justified (read through ``feed(_:_:)`` then), or when the buffer cannot grow (the next
    /// ``feed(_:_:)`` then reports it).
    public mutating func directReadBuffer(minimum: Int = 16 * 1024) -> UnsafeMutableRawBufferPointer? {
        guard let missing = missingBytes(), missing >= minimum else { return nil }
        if pendingCapacity - pendingCount < minimum {
            // Grown before any byte of it arrived, so only as far as the bytes already here justify (double them,
            // or the first reservation); otherwise the bytes come through an ordinary read and `feed`.
            let justified = min(max(2 * pendingCount, Self.initialReservation), pendingCount + missing)
            guard justified - pendingCount >= minimum,
                  (try? grow(toHold: pendingCount + minimum, frame: justified)) != nil else { return nil }
        }
        guard let pending else { return nil }
        return UnsafeMutableRawBufferPointer(start: pending + pendingCount, count: min(missing, pendingCapacity - pendingCount))
    }

    /// Accounts for `count` bytes read into the region given by ``directReadBuffer(minimum:)``.
    public mutating func commitDirectRead(_ count: Int, _ onFrame: (UnsafeRawBufferPointer) -> Bool) {
        guard let pending, let missing = missingBytes() else { return }
        precondition(count <= missing && pendingCount + count <= pendingCapacity)
        pendingCount += count
        if count == missing {
            _ = onFrame(UnsafeRawBufferPointer(start: pending, count: pendingCount))
            releasePending()
        }
    }

    @inline(__always)
    private func frameSize(_ p: UnsafeRawPointer) throws(FramingError) -> Int {
        let length = Int(UInt32(bigEndian: p.loadUnaligned(as: UInt32.self)))
        if length > maxPayload {
            throw FramingError(.frameSizeError, "frame payload of \(length) bytes exceeds the limit of \(maxPayload)")
        }
        return headerSize + length
    }

    /// Makes room for at least `needed` bytes of a frame of `frame` bytes: at least what arrived (and
    /// ``initialReservation``), at most double the current buffer, never more than the frame.
    private mutating func grow(toHold needed: Int, frame: Int) throws(FramingError) {
        if pendingCapacity >= needed { return }
        let newCapacity = min(max(needed, 2 * pendingCapacity, Self.initialReservation), max(frame, needed))
        guard let buffer = realloc(pending, newCapacity) else {
            throw FramingError(.resourceLimit, "cannot allocate \(newCapacity) bytes for an incoming frame")
        }
        pending = buffer
        pendingCapacity = newCapacity
    }

    private mutating func append(_ p: UnsafeRawPointer, _ n: Int, frame: Int) throws(FramingError) {
        guard n > 0 else { return }
        try grow(toHold: pendingCount + n, frame: frame)
        (pending! + pendingCount).copyMemory(from: p, byteCount: n)
        pendingCount += n
    }

    private mutating func releasePending() {
        free(pending)
        pending = nil
        pendingCount = 0
        pendingCapacity = 0
    }
}
