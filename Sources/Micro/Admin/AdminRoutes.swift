internal import HTTPTypes
public import MicroHTTPServer

/// The admin routes of a process: `GET /health` (200 `{"status":"SERVING"}`, or 503 `NOT_SERVING` while it stops)
/// and `GET /metrics` (the Prometheus text format of `metrics`). Served by the sidecar and, on its admin address,
/// by a ``MicroService``.
public struct AdminRoutes: Sendable {
    public let metrics: MetricsRegistry
    public let isServing: @Sendable () -> Bool

    public init(metrics: MetricsRegistry, isServing: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.isServing = isServing
    }

    /// The answer when `request` names an admin route; nil otherwise.
    public func response(to request: HTTPServerRequest) -> HTTPServerResponse? {
        let path = request.head.path.map { $0.split(separator: "?", maxSplits: 1).first.map(String.init) ?? $0 } ?? "/"
        switch path {
        case "/health":
            guard request.head.method == .get || request.head.method == .head else { return Self.methodNotAllowed("GET") }
            return isServing() ? .json(.ok, #"{"status":"SERVING"}"#) : .json(.serviceUnavailable, #"{"status":"NOT_SERVING"}"#)
        case "/metrics":
            guard request.head.method == .get || request.head.method == .head else { return Self.methodNotAllowed("GET") }
            var fields = HTTPFields()
            fields[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return HTTPServerResponse(status: .ok, headerFields: fields, body: metrics.emitToBuffer())
        default:
            return nil
        }
    }

    /// 405 with the `Allow` header.
    public static func methodNotAllowed(_ allow: String) -> HTTPServerResponse {
        var fields = HTTPFields()
        fields[.allow] = allow
        return .json(.methodNotAllowed, #"{"code":"methodNotAllowed","message":"use \#(allow)"}"#, headerFields: fields)
    }

    /// 404 in the sidecar's error format.
    public static func notFound(_ path: String) -> HTTPServerResponse {
        .json(.notFound, #"{"code":"notFound","status":5,"message":"no route \#(jsonEscaped(path))"}"#)
    }
}

/// `s` as the inside of a JSON string.
func jsonEscaped(_ s: String) -> String { HTTPServerResponse.jsonEscaped(s) }
