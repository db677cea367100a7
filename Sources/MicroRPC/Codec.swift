public import MicroCore
/// Turns values into message bytes and back, for one content type. A server picks the codec by the request's
/// content type; a client by the content type of the call.
///
/// The value's type is checked at run time (as go-micro's codecs do): a codec throws ``RPCError`` with
/// `invalidArgument` for a type it cannot carry, and for bytes that do not decode.
public protocol Codec: Sendable {
    /// The content type this codec reads and writes, e.g. `application/json`.
    var contentType: String { get }
    /// Whether this codec can encode and decode values of `type`.
    func supports(_ type: Any.Type) -> Bool
    func encode<Value>(_ value: Value) throws(RPCError) -> [UInt8]
    func decode<Value>(_ type: Value.Type, from bytes: [UInt8]) throws(RPCError) -> Value
}

/// Content types of the stock codecs.
public enum ContentType {
    public static let raw = "application/octet-stream"
    public static let json = "application/json"
    public static let protobuf = "application/protobuf"
}
