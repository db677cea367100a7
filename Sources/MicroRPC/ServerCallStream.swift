internal import MicroCore

/// The server's side of a streaming call: the client's messages in, the server's messages out, both as raw
/// bytes or through the call's codec.
public struct ServerCallStream: Sendable {
    /// What the handler knows of the call (a middleware may have added to it, e.g. the caller's identity).
    public var context: RPCContext
    public let contentType: String
    let stream: ServerStream
    let codec: any Codec

    init(stream: ServerStream, context: RPCContext, codec: any Codec) {
        self.stream = stream
        self.context = context
        self.contentType = stream.head.contentType
        self.codec = codec
    }

    /// The client's next message, or nil once the client closed its side.
    public func receive() async throws -> [UInt8]? {
        do {
            return try await stream.receive()
        } catch let e as TransportError {
            throw RPCError(e)
        }
    }

    /// The next message decoded as `T`, or nil once the client closed its side.
    public func receive<T>(as type: T.Type) async throws -> T? {
        guard let bytes = try await receive() else { return nil }
        return try codec.decode(T.self, from: bytes)
    }

    public func send(_ message: [UInt8]) async throws {
        do {
            try await stream.send(message)
        } catch {
            throw RPCError(error)
        }
    }

    /// Sends `value` encoded with the call's codec.
    public func send<T>(value: T) async throws {
        try await send(try codec.encode(value))
    }
}
