import Foundation
internal import HTTPTypes
internal import MicroCore
public import MicroEventLoop
public import MicroHTTPServer
internal import MicroRPC
internal import MicroRegistry

/// What the sidecar serves and how calls through it behave.
public struct SidecarConfiguration: Sendable {
    /// Where it listens.
    public var address = "127.0.0.1:8080"
    /// The HTTP server's limits and timeouts.
    public var http = HTTPServerConfiguration()
    /// The deadline of a call whose request names none.
    public var defaultTimeout: Duration = .seconds(10)
    /// Longer deadlines in requests are cut to this.
    public var maxTimeout: Duration = .seconds(300)

    public init() {}
}

/// An HTTP way into the services of a registry, as go-micro's API gateway: `POST /SERVICE/ENDPOINT` with a JSON body
/// calls the endpoint through discovery, selection, retries, the deadline and the client's middleware, and answers
/// its JSON result; `GET /services`, `GET /health` and `GET /metrics` (Prometheus text) describe the process.
///
/// A request's deadline is `X-Micro-Timeout` (`250ms`, `2s`, `1.5`) or `X-Micro-Deadline` (Unix time in
/// milliseconds), else ``SidecarConfiguration/defaultTimeout``. Headers `X-Micro-Meta-KEY: value` become request
/// metadata `key: value`; response metadata comes back the same way. RPC errors become HTTP statuses by gRPC's
/// mapping (``HTTPTypes/HTTPResponse/Status/init(rpc:)``), an unknown service 404, each with a JSON body
/// `{"code": "unavailable", "status": 14, "message": "..."}`. A body with `Content-Type: application/octet-stream`
/// is passed as raw bytes, `application/protobuf` as protobuf; JSON (also when sent as curl's default form type)
/// is checked first (400 when it is not valid); other types get 415.
///
/// Thread-safe. Not promised: streaming endpoints (a stream endpoint answers 501) or publishing over HTTP.
public final class Sidecar: Sendable {
    public let service: MicroService
    public let configuration: SidecarConfiguration
    public let admin: AdminRoutes
    private let server: HTTPServer

    private init(service: MicroService, configuration: SidecarConfiguration, admin: AdminRoutes, server: HTTPServer) {
        self.service = service
        self.configuration = configuration
        self.admin = admin
        self.server = server
    }

    /// Starts serving on `configuration.address`, on the service's loops, calling through `service.client`.
    public static func start(service: MicroService, configuration: SidecarConfiguration = SidecarConfiguration()) async throws -> Sidecar {
        let address = try SocketAddress(configuration.address)
        let admin = AdminRoutes(metrics: service.metrics) { true }
        let router = SidecarRouter(client: service.client, registry: service.registry, configuration: configuration, admin: admin)
        let server = try await HTTPServer.start(group: service.group, address: address, configuration: configuration.http) { request in
            await router.respond(to: request)
        }
        return Sidecar(service: service, configuration: configuration, admin: admin, server: server)
    }

    /// The bound address (the real port when port 0 was asked for).
    public var localAddress: SocketAddress { server.localAddress }

    /// Stops accepting; requests under way finish within `gracePeriod`.
    public func close(gracePeriod: Duration = .seconds(5)) async {
        await server.close(gracePeriod: gracePeriod)
    }
}

/// The sidecar's routes. Stateless apart from what it holds: safe from any loop.
struct SidecarRouter: Sendable {
    let client: Client
    let registry: any Registry
    let configuration: SidecarConfiguration
    let admin: AdminRoutes

    static let timeoutHeader = HTTPField.Name("X-Micro-Timeout")!
    static let deadlineHeader = HTTPField.Name("X-Micro-Deadline")!
    static let metadataPrefix = "x-micro-meta-"

    func respond(to request: HTTPServerRequest) async -> HTTPServerResponse {
        let rawPath = request.head.path ?? "/"
        // The path without its query, split at the first inner slash: /SERVICE/ENDPOINT.
        var path = Substring(rawPath)
        if let query = path.utf8.firstIndex(of: UInt8(ascii: "?")) { path = path[..<query] }
        let utf8 = path.utf8
        if let slash = utf8.dropFirst().firstIndex(of: UInt8(ascii: "/")), utf8.first == UInt8(ascii: "/") {
            let service = path[path.index(after: path.startIndex)..<slash]
            let endpoint = path[path.index(after: slash)...]
            if !service.isEmpty && !endpoint.isEmpty {
                guard request.head.method == .post else { return AdminRoutes.methodNotAllowed("POST") }
                var serviceName = String(service)
                var endpointName = String(endpoint)
                if utf8.contains(UInt8(ascii: "%")) {
                    serviceName = serviceName.removingPercentEncoding ?? serviceName
                    endpointName = endpointName.removingPercentEncoding ?? endpointName
                }
                return await call(serviceName, endpointName, request)
            }
        }
        if let response = admin.response(to: request) { return response }
        if path == "/services" {
            guard request.head.method == .get || request.head.method == .head else { return AdminRoutes.methodNotAllowed("GET") }
            return await services()
        }
        return AdminRoutes.notFound(String(path))
    }

    private func services() async -> HTTPServerResponse {
        do {
            let list = try await registry.listServices()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let body = try encoder.encode(list.sorted { ($0.name, $0.version) < ($1.name, $1.version) })
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            return HTTPServerResponse(status: .ok, headerFields: fields, body: Array(body))
        } catch {
            return Self.error(.serviceUnavailable, code: .unavailable, "registry: \(error)")
        }
    }

    private func call(_ service: String, _ endpoint: String, _ request: HTTPServerRequest) async -> HTTPServerResponse {
        let fields = request.head.headerFields
        // The deadline.
        var timeout = configuration.defaultTimeout
        if let text = fields[Self.timeoutHeader] {
            guard let t = Duration(text: text) else {
                return Self.error(.badRequest, code: .invalidArgument, "X-Micro-Timeout must be a duration such as 250ms or 2s, not \(text)")
            }
            timeout = t
        }
        if let text = fields[Self.deadlineHeader] {
            guard let ms = Int64(text), ms > 0 else {
                return Self.error(.badRequest, code: .invalidArgument, "X-Micro-Deadline must be Unix time in milliseconds, not \(text)")
            }
            let remaining = ms - Int64(Date().timeIntervalSince1970 * 1000)
            guard remaining > 0 else { return Self.error(.gatewayTimeout, code: .deadlineExceeded, "the deadline passed before the call") }
            timeout = min(timeout, .milliseconds(remaining))
        }
        timeout = min(timeout, configuration.maxTimeout)
        // The body.
        let contentType: String
        let rawContentType = fields[.contentType]
        switch rawContentType == "application/json" ? "application/json"
            : rawContentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() {
        // curl -d sends form-urlencoded: read as JSON, which is what such a body almost always is here.
        case nil, "application/json", "text/json", "application/x-www-form-urlencoded":
            contentType = ContentType.json
            if !request.body.isEmpty, !JSONSyntax.isValid(request.body) {
                return Self.error(.badRequest, code: .invalidArgument, "the body is not valid JSON")
            }
        case "application/octet-stream":
            contentType = ContentType.raw
        case "application/protobuf", "application/x-protobuf":
            contentType = ContentType.protobuf
        case let other?:
            return Self.error(.unsupportedMediaType, code: .invalidArgument, "content type \(other): JSON, application/octet-stream or application/protobuf")
        }
        // Metadata.
        var metadata = Metadata()
        for field in fields where field.name.canonicalName.hasPrefix(Self.metadataPrefix) {
            metadata.append(String(field.name.canonicalName.dropFirst(Self.metadataPrefix.count)), field.value)
        }
        let body = request.body.isEmpty && contentType == ContentType.json ? Array("{}".utf8) : request.body
        do {
            let response = try await client.call(Request(service: service, endpoint: endpoint, contentType: contentType, body: body, metadata: metadata),
                                                 options: CallOptions(timeout: timeout, waitForNode: false))
            var out = HTTPFields()
            out[.contentType] = contentType == ContentType.raw ? "application/octet-stream" : contentType
            for (key, value) in response.metadata {
                if let name = HTTPField.Name("X-Micro-Meta-" + key) { out.append(HTTPField(name: name, value: value)) }
            }
            return HTTPServerResponse(status: .ok, headerFields: out, body: response.body)
        } catch let error as RPCError {
            // No node: an unknown service is 404. The registry is asked only on this path.
            if error.code == .unavailable, error.cause is SelectorError || error.cause is RegistryError, await !isRegistered(service) {
                return Self.error(.notFound, code: .notFound, "unknown service \(service)")
            }
            return Self.error(HTTPResponse.Status(rpc: error.code), code: error.code, error.message)
        } catch {
            return Self.error(.internalServerError, code: .internalError, "\(error)")
        }
    }

    /// Whether the registry has a node of `service` (true when it cannot tell: then the answer stays 503).
    private func isRegistered(_ service: String) async -> Bool {
        do {
            return try await registry.getService(service).contains { !$0.nodes.isEmpty }
        } catch RegistryError.notFound {
            return false
        } catch {
            return true
        }
    }

    static func error(_ status: HTTPResponse.Status, code: StatusCode, _ message: String) -> HTTPServerResponse {
        .json(status, #"{"code":"\#(code.name)","status":\#(code.rawValue),"message":"\#(jsonEscaped(message))"}"#)
    }
}
