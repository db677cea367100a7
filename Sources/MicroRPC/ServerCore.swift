internal import MicroCore
import Synchronization

/// What a server's routes share: its configuration, admission and stop flag. Apart from ``Server`` so that routes
/// do not keep the server alive.
final class ServerCore: Sendable {
    let configuration: ServerConfiguration
    /// The concurrency limit; every counted call goes in and out through it.
    let admission: Admission
    /// The configuration's middleware, read once (not out of the configuration struct per call).
    let middleware: (any ServerMiddleware)?
    /// Whether there is middleware: tested per call instead of copying the optional existential out.
    let hasMiddleware: Bool
    /// Whether all of it is synchronous: its hooks then run around unary handlers, with no `async` level.
    let synchronousMiddleware: Bool
    /// The middleware's synchronous hooks, held by its concrete type (nil without middleware): the ones
    /// ``ServerConfiguration/use(_:)`` made, specialized for the chain, else made here.
    let hooks: ServerHooks?
    /// Set when a graceful stop began: health reports NOT_SERVING.
    let draining = Atomic<Bool>(false)

    init(configuration: ServerConfiguration) {
        self.configuration = configuration
        admission = Admission(limit: configuration.maxConcurrentCalls)
        middleware = configuration.middleware
        hasMiddleware = configuration.middleware != nil
        synchronousMiddleware = configuration.middleware?.handlesSynchronously ?? false
        hooks = configuration.hooks ?? configuration.middleware.map { Self.hooks(of: $0) }
    }

    private static func hooks(of middleware: some ServerMiddleware) -> ServerHooks {
        ServerHooks(middleware)
    }

    /// The answer to a call refused at the concurrency limit.
    var overloadStatus: Status {
        .nack(restartable: true, .resourceExhausted,
              "server \(configuration.name) is at its limit of \(configuration.maxConcurrentCalls) concurrent calls")
    }
}
