public import MicroCore
public import MicroRPC
public import MicroCoreTestSupport
public import Synchronization
public import Testing

// Shared by the RPC test targets (in-memory and loopback).

/// Counts what handlers saw.
public final class Counter: Sendable {
    public init() {}
    public let value = Atomic<Int>(0)
    public func add(_ n: Int = 1) { value.add(n, ordering: .relaxed) }
    public var count: Int { value.load(ordering: .relaxed) }
}


public func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
public func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

/// A selector that hands out the given nodes in order (each call starts from the first), recording the marks.
public final class OrderedSelector: Selector {
    public let nodes: [Node]
    public let marks = Mutex<[(String, Outcome)]>([])

    public init(_ addresses: [String]) {
        nodes = addresses.enumerated().map { Node(id: "n\($0.offset)", address: $0.element) }
    }

    public func select(_ service: String, options: SelectOptions) async throws -> Next {
        let nodes = self.nodes
        var i = 0
        return Next(service: service) {
            defer { i += 1 }
            return nodes[min(i, nodes.count - 1)]
        }
    }

    public func mark(_ service: String, node: Node, outcome: Outcome) {
        marks.withLock { $0.append((node.id, outcome)) }
    }

    public func reset(_ service: String) {}

    public var failures: [String] { marks.withLock { $0.filter { if case .failure = $0.1 { true } else { false } }.map(\.0) } }
    public var successes: [String] { marks.withLock { $0.filter { if case .success = $0.1 { true } else { false } }.map(\.0) } }
}

/// Calls and expects an RPCError with `code` whose message contains `fragment`.
public func expectError(_ client: Client, _ options: CallOptions, _ request: Request, _ code: RPCError.Code, _ fragment: String,
                 sourceLocation: SourceLocation = #_sourceLocation) async {
    let result: Result<Response, any Error>
    do {
        result = .success(try await client.call(request, options: options))
    } catch {
        result = .failure(error)
    }
    switch result {
    case .success:
        Issue.record("expected \(code)", sourceLocation: sourceLocation)
    case .failure(let e as RPCError):
        #expect(e.code == code, "\(e)", sourceLocation: sourceLocation)
        #expect(e.message.contains(fragment), "\(e.message)", sourceLocation: sourceLocation)
    case .failure(let e):
        Issue.record("unexpected \(e)", sourceLocation: sourceLocation)
    }
}


/// A gate tasks wait on until the test opens it (ignoring cancellation).
public typealias AsyncGate = MicroCoreTestSupport.Gate
