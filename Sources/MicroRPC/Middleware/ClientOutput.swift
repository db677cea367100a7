/// What a call through the client middleware produces: the response of a unary call, or the opened stream.
/// One concrete type (not a generic parameter), so that a middleware hop needs no type metadata at run time.
public enum ClientOutput: Sendable {
    case response(Response)
    case stream(ClientCallStream)
}

/// The client's outputs, to and from ``ClientOutput`` (what the call path is generic over).
protocol ClientOutputConvertible {
    var clientOutput: ClientOutput { get }
    static func unwrap(_ output: ClientOutput) -> Self
}

extension Response: ClientOutputConvertible {
    @inline(__always)
    var clientOutput: ClientOutput { .response(self) }

    @inline(__always)
    static func unwrap(_ output: ClientOutput) -> Response {
        guard case .response(let r) = output else { preconditionFailure("a unary call's middleware returned a stream") }
        return r
    }
}

extension ClientCallStream: ClientOutputConvertible {
    var clientOutput: ClientOutput { .stream(self) }

    static func unwrap(_ output: ClientOutput) -> ClientCallStream {
        guard case .stream(let s) = output else { preconditionFailure("a stream's middleware returned a response") }
        return s
    }
}
