// The check behind FuzzHTTPRequest: the sidecar's request parser must never crash, never hand out a body or a
// head beyond its limits, and drip-fed in slices it must produce exactly what it produces in one piece: the same
// requests, then the same error (or none).
import HTTPTypes
import MicroHTTPServer

struct Outcome: Equatable {
    var requests: [String] = []
    var error: HTTPParseError?
}

func parse(_ bytes: UnsafeRawBufferPointer, step: Int, limits: HTTPRequestLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var out = Outcome()
    var i = 0
    do {
        while i < bytes.count {
            parser.append(UnsafeRawBufferPointer(rebasing: bytes[i..<min(bytes.count, i + step)]))
            while let r = try parser.next() {
                precondition(r.body.count <= limits.maxBodyBytes, "a body beyond the limit")
                precondition(r.head.headerFields.count <= limits.maxHeaderCount, "more header fields than the limit")
                out.requests.append("\(r.head.method.rawValue) \(r.head.path ?? "") \(r.head.authority ?? "-") \(r.keepAlive) \(r.isHTTP10) \(r.head.headerFields.count) \(r.body)")
            }
            i += step
        }
    } catch {
        out.error = error
    }
    return out
}

/// The input's first byte picks the slice size (low 4 bits) and small or default limits (bit 4); the rest is
/// the bytes a client sent.
func checkRequests(_ data: UnsafeRawBufferPointer) {
    guard data.count > 1 else { return }
    let step = Int(data[0] % 16) + 1
    var limits = HTTPRequestLimits()
    if data[0] & 0x10 != 0 {
        limits.maxRequestLineBytes = 40
        limits.maxHeaderBytes = 64
        limits.maxHeaderCount = 4
        limits.maxBodyBytes = 32
    }
    let input = UnsafeRawBufferPointer(rebasing: data[1...])
    let whole = parse(input, step: input.count, limits: limits)
    let sliced = parse(input, step: step, limits: limits)
    if whole != sliced {
        fatalError("slicing changed the result: \(whole) vs \(sliced)")
    }
}
