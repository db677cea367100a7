internal import MicroCore

extension RPCError {
    /// The RPC outcome of a transport failure.
    init(_ error: TransportError) {
        switch error.code {
        case .connectFailed:
            self.init(.unavailable, error.message, cause: error, workNotStarted: true)
        case .notProcessed:
            self.init(.unavailable, error.message, cause: error, workNotStarted: true)
        case .connectionClosed:
            self.init(.unavailable, error.message, cause: error)
        case .protocolError:
            self.init(.internalError, error.message, cause: error)
        case .cancelled:
            self.init(.cancelled, error.message, cause: error)
        case .messageTooLarge:
            self.init(.resourceExhausted, error.message, cause: error, workNotStarted: true)
        case .deadlineExceeded:
            self.init(.deadlineExceeded, error.message, cause: error)
        case .poolExhausted:
            self.init(.resourceExhausted, error.message, cause: error, workNotStarted: true)
        case .shutdown:
            self.init(.unavailable, error.message, cause: error, workNotStarted: true)
        case .invalidState:
            self.init(.internalError, error.message, cause: error)
        }
    }

    /// The error a non-OK status stands for; nil for OK.
    init?(status: Status, metadata: Metadata) {
        switch status {
        case .ok:
            return nil
        case .error(let code, let message):
            self.init(Code(status: code), message, metadata: metadata)
        case .nack(let restartable, let code, let message):
            // A NACK's code is the server's reason for refusing: overload is resourceExhausted; the transport's
            // own refusals (REFUSED_STREAM and others, numbered by the protocol, not by gRPC) mean unavailable.
            let mapped: Code = code == Code.resourceExhausted.rawValue ? .resourceExhausted : .unavailable
            self.init(mapped, message, metadata: metadata, workNotStarted: restartable)
        }
    }

    /// The status that reports this error to a caller.
    var status: Status { .error(code, message) }
}
