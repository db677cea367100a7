internal import MicroCore
import Foundation
import MicroEventLoop
import MicroHTTP
import Synchronization

/// Unary calls and watch streams to etcd's JSON gateway, with a deadline on each and failover across
/// endpoints. Thread-safe.
final class EtcdClient: Sendable {
    let http: HTTPClient
    let endpoints: [SocketAddress]
    let requestTimeout: Duration
    /// The endpoint that answered last; requests start there. Guarded by its mutex.
    private let preferred = Mutex(0)

    init(http: HTTPClient, endpoints: [SocketAddress], requestTimeout: Duration) {
        self.http = http
        self.endpoints = endpoints
        self.requestTimeout = requestTimeout
    }

    static func parseEndpoint(_ text: String) throws -> SocketAddress {
        var t = Substring(text)
        if t.hasPrefix("http://") { t = t.dropFirst(7) }
        if t.hasSuffix("/") { t = t.dropLast() }
        do {
            return try SocketAddress(String(t))
        } catch {
            throw RegistryError.invalidConfiguration("etcd endpoint \(text): \(error)")
        }
    }

    /// POSTs `body` to `path` and reads the answer's body with `decode` (one of ``EtcdAnswer``'s functions; a
    /// ``RegistryError`` it throws passes unchanged, any other error becomes ``RegistryError/badResponse(_:)``).
    /// Moves to the next endpoint on connection failures, timeouts and 5xx answers; throws
    /// ``RegistryError/unavailable(_:)`` when every endpoint failed.
    func call<Request: Encodable, Response>(_ path: String, _ body: Request, decode: ([UInt8]) throws -> Response) async throws -> Response {
        let payload = Array(try JSONEncoder().encode(body))
        let request = HTTPRequest(method: "POST", path: path, headers: ["Content-Type": "application/json"], body: payload)
        let start = preferred.withLock { $0 }
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let index = (start + step) % endpoints.count
            let address = endpoints[index]
            do {
                let response = try await http.execute(request, to: address, timeout: requestTimeout)
                if response.status >= 500 {
                    failures.append("\(address): HTTP \(response.status) \(EtcdAnswer.errorText(response.body))")
                    continue
                }
                preferred.withLock { $0 = index }
                guard response.status == 200 else {
                    throw RegistryError.badResponse("\(path): HTTP \(response.status) \(EtcdAnswer.errorText(response.body))")
                }
                do {
                    return try decode(response.body)
                } catch let error as RegistryError {
                    throw error
                } catch {
                    throw RegistryError.badResponse("\(path): \(error)")
                }
            } catch let error as HTTPError {
                if error == .cancelled { throw CancellationError() }
                failures.append("\(address): \(error)")
            }
        }
        throw RegistryError.unavailable(failures.joined(separator: "; "))
    }

    /// Opens a streaming POST (a watch) on the first endpoint that answers with 200.
    func stream<Request: Encodable>(_ path: String, _ body: Request) async throws -> HTTPStreamingResponse {
        let payload = Array(try JSONEncoder().encode(body))
        let request = HTTPRequest(method: "POST", path: path, headers: ["Content-Type": "application/json"], body: payload)
        let start = preferred.withLock { $0 }
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let index = (start + step) % endpoints.count
            let address = endpoints[index]
            do {
                let response = try await http.stream(request, to: address, headTimeout: requestTimeout)
                guard response.head.status == 200 else {
                    response.cancel()
                    failures.append("\(address): HTTP \(response.head.status)")
                    continue
                }
                preferred.withLock { $0 = index }
                return response
            } catch let error as HTTPError {
                if error == .cancelled { throw CancellationError() }
                failures.append("\(address): \(error)")
            }
        }
        throw RegistryError.unavailable(failures.joined(separator: "; "))
    }

    /// Makes the next request start at another endpoint (after a stream from the current one broke).
    func avoidCurrentEndpoint() {
        preferred.withLock { $0 = ($0 + 1) % endpoints.count }
    }
}
