public import MicroCore
import Foundation
import SwiftProtobuf

/// JSON, for `application/json`: `Codable` values through Foundation's coders, and SwiftProtobuf messages through
/// their canonical JSON mapping.
public struct JSONCodec: Codec {
    public init() {}

    public var contentType: String { ContentType.json }

    public func supports(_ type: Any.Type) -> Bool {
        type is any SwiftProtobuf.Message.Type || (type is any Encodable.Type && type is any Decodable.Type)
    }

    public func encode<Value>(_ value: Value) throws(RPCError) -> [UInt8] {
        do {
            if let message = value as? any SwiftProtobuf.Message {
                return try message.jsonUTF8Bytes()
            }
            if let encodable = value as? any Encodable {
                return try Array(JSONEncoder().encode(encodable))
            }
        } catch {
            throw RPCError(.invalidArgument, "could not encode \(Value.self) as JSON: \(error)", cause: error)
        }
        throw RPCError(.invalidArgument, "\(Value.self) is neither Encodable nor a protobuf message: \(contentType) cannot carry it")
    }

    public func decode<Value>(_ type: Value.Type, from bytes: [UInt8]) throws(RPCError) -> Value {
        do {
            if let messageType = type as? any SwiftProtobuf.Message.Type {
                if let value = try messageType.init(jsonUTF8Bytes: bytes, extensions: nil, options: JSONDecodingOptions()) as? Value { return value }
            } else if let decodable = type as? any Decodable.Type {
                if let value = try JSONDecoder().decode(decodable, from: Data(bytes)) as? Value { return value }
            }
        } catch {
            throw RPCError(.invalidArgument, "could not decode \(Value.self) from JSON: \(error)", cause: error)
        }
        throw RPCError(.invalidArgument, "\(Value.self) is neither Decodable nor a protobuf message: \(contentType) cannot carry it")
    }
}
