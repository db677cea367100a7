public import MicroCore
import SwiftProtobuf

extension Client {
    /// A typed unary call: `request` is encoded with the codec of `contentType` (by default protobuf for
    /// protobuf messages, raw for `[UInt8]`, else the configured default, JSON), the response decoded as
    /// `Res` with the same codec.
    public nonisolated(nonsending) func call<Req: Sendable, Res>(
        service: String,
        endpoint: String,
        request: Req,
        as responseType: Res.Type = Res.self,
        contentType: String? = nil,
        metadata: Metadata = Metadata(),
        options: CallOptions = CallOptions()
    ) async throws -> Res {
        let type = contentType ?? defaultContentType(for: Req.self)
        guard let codec = configuration.codecs.codec(for: type) else {
            throw RPCUsageError("no codec for content type \"\(type)\" (known: \(configuration.codecs.contentTypes.joined(separator: ", ")))")
        }
        let body = try codec.encode(request)
        let response = try await call(Request(service: service, endpoint: endpoint, contentType: type, body: body, metadata: metadata), options: options)
        return try codec.decode(Res.self, from: response.body)
    }

    func defaultContentType(for type: Any.Type) -> String {
        if type == [UInt8].self { return ContentType.raw }
        if type is any SwiftProtobuf.Message.Type { return ContentType.protobuf }
        return configuration.defaultContentType
    }
}
