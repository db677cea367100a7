// The check behind FuzzHTTPResponse: the parser must never crash, and drip-fed in slices it must produce exactly
// what it produces in one piece.
import MicroHTTP

struct Outcome: Equatable {
    var head: HTTPResponseHead?
    var body: [UInt8] = []
    var ended = false
    var failed = false
}

func parse(_ bytes: UnsafeRawBufferPointer, step: Int) -> Outcome {
    var parser = HTTPResponseParser()
    var out = Outcome()
    func on(_ e: HTTPResponseParser.Event) {
        switch e {
        case .head(let h): out.head = h
        case .body(let b): out.body += b
        case .end: out.ended = true
        }
    }
    var i = 0
    do {
        while i < bytes.count {
            try parser.feed(UnsafeRawBufferPointer(rebasing: bytes[i..<min(bytes.count, i + step)]), on)
            i += step
        }
        try parser.finish(on)
    } catch {
        out.failed = true
    }
    return out
}

/// The input's first byte picks the slice size; the rest is the response.
func checkResponse(_ data: UnsafeRawBufferPointer) {
    guard data.count > 1 else { return }
    let step = Int(data[0] % 16) + 1
    let input = UnsafeRawBufferPointer(rebasing: data[1...])
    let whole = parse(input, step: input.count)
    let sliced = parse(input, step: step)
    if whole.failed != sliced.failed || (!whole.failed && whole != sliced) {
        fatalError("slicing changed the result: \(whole) vs \(sliced)")
    }
}
