import MicroCore
import MicroRPC
import MicroUVTransport

/// One unary call of a load run; returns the answer's byte count.
protocol UnaryLoadCall: Sendable {
    nonisolated(nonsending) func once() async throws -> Int
}

/// A unary call through the RPC layer's client.
struct ClientLoadCall: UnaryLoadCall {
    let client: Client
    let request: Request
    let options: CallOptions

    @inline(__always)
    nonisolated(nonsending) func once() async throws -> Int { try await client.call(request, options: options).body.count }
}

/// A unary call on the transport alone (`micro bench --layer transport`).
struct TransportLoadCall: UnaryLoadCall {
    let transport: UVClientTransport
    let address: String
    let head: RequestHead
    let message: [UInt8]

    @inline(__always)
    nonisolated(nonsending) func once() async throws -> Int {
        let r = try await transport.unary(to: address, head: head, message: message)
        guard r.status == .ok else { throw TransportError(.protocolError, "bad echo \(r.status)") }
        return r.message?.count ?? -1
    }
}
