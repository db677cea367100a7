public import MicroCore

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
            // The server refused before starting the work; its code says why (resourceExhausted: a limit;
            // unimplemented: not served here; unavailable: stopping). Restartable: safe to retry elsewhere.
            self.init(Code(status: code), message, metadata: metadata, workNotStarted: restartable)
        }
    }

    /// The status that reports this error, thrown by a handler, to its caller: always ERROR (the handler ran).
    /// `workNotStarted` of an error the handler got from a call of its own says nothing about this call.
    var status: Status { .error(code, message) }

    /// Whether this outcome of an attempt counts against the node it went to (for ejection and circuit breakers):
    /// a transport failure other than cancellation, a NACK, UNAVAILABLE or RESOURCE_EXHAUSTED. An application error
    /// is the node doing its job.
    public var countsAgainstNode: Bool {
        if let t = cause as? TransportError { return t.code != .cancelled }
        return workNotStarted || code == .unavailable || code == .resourceExhausted
    }

    /// For statuses the server sent (no transport cause): whether the node failed the call.
    var isNodeFailure: Bool { workNotStarted || code == .unavailable || code == .resourceExhausted }
}
