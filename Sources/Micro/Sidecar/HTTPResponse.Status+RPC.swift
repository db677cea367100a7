public import HTTPTypes
public import MicroCore

extension HTTPResponse.Status {
    /// The HTTP status of an RPC status code, as gRPC's HTTP mapping (google.rpc.Code) has it.
    public init(rpc code: StatusCode) {
        switch code {
        case .ok: self = .ok
        case .cancelled: self = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")
        case .invalidArgument, .failedPrecondition, .outOfRange: self = .badRequest
        case .deadlineExceeded: self = .gatewayTimeout
        case .notFound: self = .notFound
        case .alreadyExists, .aborted: self = .conflict
        case .permissionDenied: self = .forbidden
        case .resourceExhausted: self = .tooManyRequests
        case .unimplemented: self = .notImplemented
        case .unavailable: self = .serviceUnavailable
        case .unauthenticated: self = .unauthorized
        default: self = .internalServerError
        }
    }
}
