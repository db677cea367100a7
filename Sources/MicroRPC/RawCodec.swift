public import MicroCore
/// Message bytes as they are (`[UInt8]`), for `application/octet-stream`.
public struct RawCodec: Codec {
    public init() {}

    public var contentType: String { ContentType.raw }

    public func supports(_ type: Any.Type) -> Bool { type == [UInt8].self }

    public func encode<Value>(_ value: Value) throws(RPCError) -> [UInt8] {
        guard let bytes = value as? [UInt8] else {
            throw RPCError(.invalidArgument, "\(contentType) carries [UInt8], not \(Value.self)")
        }
        return bytes
    }

    public func decode<Value>(_ type: Value.Type, from bytes: [UInt8]) throws(RPCError) -> Value {
        guard let value = bytes as? Value else {
            throw RPCError(.invalidArgument, "\(contentType) decodes to [UInt8], not \(Value.self)")
        }
        return value
    }
}
