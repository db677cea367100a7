public import MicroCore

/// The wire form of a REQUEST head (docs/PROTOCOL.md §6.2).
extension RequestHead {
    /// Whether every field fits the wire format without being cut.
    public var isEncodable: Bool {
        ByteWriter.fits16(service) && ByteWriter.fits16(endpoint) && ByteWriter.fits16(contentType) && metadata.isEncodable
    }

    public var encodedSize: Int {
        ByteWriter.size16(service) + ByteWriter.size16(endpoint) + ByteWriter.size16(contentType) + 8 + 2 + metadata.encodedSize
    }

    public func encode(_ w: inout ByteWriter) {
        w.string16(service)
        w.string16(endpoint)
        w.string16(contentType)
        w.u64(timeoutMicroseconds)
        w.u16(attempt)
        metadata.encode(&w)
    }

    public static func decode(_ r: inout ByteReader) throws(FramingError) -> RequestHead {
        var interner = StringInterner(capacity: 0)
        return try decode(&r, interner: &interner)
    }

    /// Decodes with the names (service, endpoint, content type) taken from `interner` when seen recently.
    public static func decode(_ r: inout ByteReader, interner: inout StringInterner) throws(FramingError) -> RequestHead {
        let service = try r.string16("service", interner: &interner, kind: 0)
        let endpoint = try r.string16("endpoint", interner: &interner, kind: 1)
        let contentType = try r.string16("content type", interner: &interner, kind: 2)
        let timeout = try r.u64("deadline")
        let attempt = try r.u16("attempt")
        let metadata = try Metadata.decode(&r)
        return RequestHead(service: service, endpoint: endpoint, contentType: contentType,
                           timeoutMicroseconds: timeout, attempt: attempt, metadata: metadata)
    }
}

/// The wire form of a status (docs/PROTOCOL.md §6.3).
extension Status {
    var kind: UInt8 {
        switch self {
        case .ok: 0
        case .error: 1
        case .nack(let restartable, _, _): restartable ? 2 : 3
        }
    }

    public var encodedSize: Int {
        switch self {
        case .ok: 1 + 4 + 2
        case .error(_, let m), .nack(_, _, let m): 1 + 4 + ByteWriter.size16(m)
        }
    }

    public func encode(_ w: inout ByteWriter) {
        w.u8(kind)
        switch self {
        case .ok:
            w.u32(0)
            w.u16(0)
        case .error(let code, let m), .nack(_, let code, let m):
            w.u32(code)
            w.string16(m)
        }
    }

    public static func decode(_ r: inout ByteReader) throws(FramingError) -> Status {
        let kind = try r.u8("status")
        let code = try r.u32("status code")
        let message = try r.string16("status message")
        switch kind {
        case 0: return .ok
        case 1: return .error(code: code, message: message)
        case 2: return .nack(restartable: true, code: code, message: message)
        case 3: return .nack(restartable: false, code: code, message: message)
        default: throw FramingError(.protocolError, "unknown status kind \(kind)")
        }
    }
}

/// The wire form of a RESPONSE head (docs/PROTOCOL.md §6.3).
extension ResponseHead {
    public var encodedSize: Int { status.encodedSize + metadata.encodedSize }

    /// Whether the metadata fits the wire format. (A status message above 65,535 bytes is cut, never refused.)
    public var isEncodable: Bool { metadata.isEncodable }

    public func encode(_ w: inout ByteWriter) {
        status.encode(&w)
        metadata.encode(&w)
    }

    public static func decode(_ r: inout ByteReader) throws(FramingError) -> ResponseHead {
        let status = try Status.decode(&r)
        let metadata = try Metadata.decode(&r)
        return ResponseHead(status: status, metadata: metadata)
    }
}
