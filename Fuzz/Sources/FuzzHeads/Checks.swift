// The check behind FuzzHeads: the decoders of a request head (with and without the string interner), a response head
// and metadata (docs/PROTOCOL.md §6) never crash, fail only with FramingError, and what they decode encodes back into
// bytes that decode to the same value, in exactly `encodedSize` bytes.
import MicroCore
import MicroFraming

func roundTrip<T: Equatable>(_ value: T, size: Int, encode: (inout ByteWriter) -> Void,
                             decode: (inout ByteReader) throws(FramingError) -> T) {
    var bytes = [UInt8](repeating: 0, count: size)
    let written = bytes.withUnsafeMutableBytes { raw -> Int in
        var w = ByteWriter(raw.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 8)!)
        if size > 0 { encode(&w) }
        return w.offset
    }
    precondition(written == size, "encodedSize \(size) but \(written) bytes written")
    bytes.withUnsafeBytes { raw in
        var r = ByteReader(raw)
        do throws(FramingError) {
            let again = try decode(&r)
            precondition(again == value, "round trip differs: \(value) vs \(again)")
            precondition(r.remaining == 0, "\(r.remaining) bytes left after the round trip")
        } catch {
            preconditionFailure("the encoded form does not decode: \(error)")
        }
    }
}

/// The input's first byte picks the decoder (0: request, 1: request twice through one interner, 2: response,
/// 3: metadata); the rest is the payload.
func checkHeads(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let payload = UnsafeRawBufferPointer(rebasing: data[1...])
    var r = ByteReader(payload)
    switch control % 4 {
    case 0:
        guard let head = try? RequestHead.decode(&r) else { return }
        precondition(head.isEncodable)
        roundTrip(head, size: head.encodedSize, encode: { head.encode(&$0) }, decode: { (r: inout ByteReader) throws(FramingError) in try RequestHead.decode(&r) })
    case 1:
        var interner = StringInterner(capacity: 8)
        var plain = ByteReader(payload)
        let first = try? RequestHead.decode(&r, interner: &interner)
        precondition(first == (try? RequestHead.decode(&plain)), "the interner changed the decoded head")
        var again = ByteReader(payload)
        let second = try? RequestHead.decode(&again, interner: &interner)
        precondition(second == first, "a warm interner changed the decoded head")
    case 2:
        guard let head = try? ResponseHead.decode(&r) else { return }
        precondition(head.isEncodable)
        roundTrip(head, size: head.encodedSize, encode: { head.encode(&$0) }, decode: { (r: inout ByteReader) throws(FramingError) in try ResponseHead.decode(&r) })
    default:
        guard let metadata = try? Metadata.decode(&r) else { return }
        precondition(metadata.isEncodable)
        roundTrip(metadata, size: metadata.encodedSize, encode: { metadata.encode(&$0) }, decode: { (r: inout ByteReader) throws(FramingError) in try Metadata.decode(&r) })
    }
}
