public import MicroCore
import SwiftProtobuf

/// Protocol Buffers' binary encoding of SwiftProtobuf messages, for `application/protobuf`.
public struct ProtobufCodec: Codec {
    public init() {}

    public var contentType: String { ContentType.protobuf }

    public func supports(_ type: Any.Type) -> Bool { type is any SwiftProtobuf.Message.Type }

    public func encode<Value>(_ value: Value) throws(RPCError) -> [UInt8] {
        guard let message = value as? any SwiftProtobuf.Message else {
            throw RPCError(.invalidArgument, "\(Value.self) is not a protobuf message: \(contentType) cannot carry it")
        }
        do {
            return try message.serializedBytes()
        } catch {
            throw RPCError(.invalidArgument, "could not encode \(Value.self): \(error)", cause: error)
        }
    }

    public func decode<Value>(_ type: Value.Type, from bytes: [UInt8]) throws(RPCError) -> Value {
        guard let messageType = type as? any SwiftProtobuf.Message.Type else {
            throw RPCError(.invalidArgument, "\(Value.self) is not a protobuf message: \(contentType) cannot carry it")
        }
        do {
            guard let value = try messageType.init(serializedBytes: bytes, extensions: nil, partial: false, options: BinaryDecodingOptions()) as? Value else {
                throw RPCError(.internalError, "decoded message is not a \(Value.self)")
            }
            return value
        } catch let e as RPCError {
            throw e
        } catch {
            throw RPCError(.invalidArgument, "could not decode \(Value.self) from protobuf bytes: \(error)", cause: error)
        }
    }
}
