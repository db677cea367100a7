import InMemoryTracing
import MicroCore
import MicroMiddleware
import MicroRPC
import MicroTestSupport
import Synchronization
import Testing
import Tracing

/// The W3C trace context (traceparent, tracestate) over the in-memory tracer's spans: ids are hex of W3C length,
/// `inject` writes `traceparent: 00-<trace id>-<span id>-01` (and `tracestate` when the context has one), `extract`
/// parses them back. What swift-otel's propagator does, small enough for a test.
struct W3CTracer: Tracer {
    typealias Span = InMemorySpan

    let inner: InMemoryTracer

    init() {
        inner = InMemoryTracer(idGenerator: .init(nextTraceID: { Self.hex(2) }, nextSpanID: { Self.hex(1) }))
    }

    /// `words` random 64-bit words as lowercase hex, 16 digits each.
    static func hex(_ words: Int) -> String {
        (0..<words).map { _ in
            let s = String(UInt64.random(in: 1...UInt64.max), radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }.joined()
    }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> InstrumentationContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> InMemorySpan {
        inner.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
        if let state = context.traceState { injector.inject(state, forKey: "tracestate", into: &carrier) }
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let parent = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = parent.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16 else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
        if let state = extractor.extract(key: "tracestate", from: carrier) { context.traceState = state }
    }
}

/// The W3C `tracestate` carried in a service context.
private enum TraceStateKey: InstrumentationContextKey {
    typealias Value = String
}

extension InstrumentationContext {
    var traceState: String? {
        get { self[TraceStateKey.self] }
        set { self[TraceStateKey.self] = newValue }
    }
}

@Suite("Tracing middleware")
struct TracingTests {
    /// Three hops: the test (A) calls b; b's handler calls c with its own client; c answers with what it saw.
    struct Hops {
        let b: RunningServer
        let c: RunningServer
        let bClient: RunningClient
        /// The metadata each handler saw.
        let seenByB: Recorder<Metadata>
        let seenByC: Recorder<Metadata>

        static func start(tracer: any Tracer, cFails: Bool = false) async throws -> Hops {
            let seenByB = Recorder<Metadata>()
            let seenByC = Recorder<Metadata>()
            let c = try await RunningServer.start("c", configure: { $0.use { TracingMiddleware(tracer: tracer) } }) { server in
                server.handle("C.Call") { r, context in
                    seenByC.append(context.metadata)
                    if cFails { throw RPCError(.notFound, "c has nothing") }
                    return Response(body: r.body + [3])
                }
            }
            let bClient = RunningClient.start { $0.use { TracingMiddleware(tracer: tracer) } }
            let toC = bClient.client
            let cAddress = c.address
            let b = try await RunningServer.start("b", configure: { $0.use { TracingMiddleware(tracer: tracer) } }) { server in
                server.handle("B.Call") { r, context in
                    seenByB.append(context.metadata)
                    // Runs with the ServiceContext of b's server span: this call continues the trace.
                    let fromC = try await toC.call(Request(service: "c", endpoint: "C.Call", body: r.body + [2]),
                                                   options: CallOptions(retries: 0, address: cAddress))
                    return Response(body: fromC.body)
                }
            }
            return Hops(b: b, c: c, bClient: bClient, seenByB: seenByB, seenByC: seenByC)
        }

        func stop() async {
            await b.stop()
            await bClient.stop()
            await c.stop()
        }
    }

    static func span(_ spans: [FinishedInMemorySpan], _ name: String, _ kind: SpanKind,
                     sourceLocation: SourceLocation = #_sourceLocation) throws -> FinishedInMemorySpan {
        let matching = spans.filter { $0.operationName == name && $0.kind == kind }
        #expect(matching.count == 1, "one \(kind) span \(name): \(spans.map { "\($0.kind) \($0.operationName)" })",
                sourceLocation: sourceLocation)
        return try #require(matching.first, sourceLocation: sourceLocation)
    }

    @Test("A -> B -> C: one trace; parents client(A) -> server(B) -> client(B->C) -> server(C); rpc attributes set")
    func threeHops() async throws {
        let tracer = InMemoryTracer()
        let hops = try await Hops.start(tracer: tracer)
        let a = RunningClient.start { $0.use { TracingMiddleware(tracer: tracer) } }
        let r = try await a.client.call(Request(service: "b", endpoint: "B.Call", body: [1]),
                                        options: CallOptions(retries: 0, address: hops.b.address))
        #expect(r.body == [1, 2, 3])

        // Every span ended before its call returned (the server's before it answered).
        let spans = tracer.finishedSpans
        #expect(tracer.activeSpans.isEmpty)
        let clientA = try Self.span(spans, "b/B.Call", .client)
        let serverB = try Self.span(spans, "b/B.Call", .server)
        let clientB = try Self.span(spans, "c/C.Call", .client)
        let serverC = try Self.span(spans, "c/C.Call", .server)

        #expect(clientA.parentSpanID == nil, "A's span is a root")
        for span in [serverB, clientB, serverC] {
            #expect(span.traceID == clientA.traceID, "\(span.kind) \(span.operationName) is in A's trace")
        }
        #expect(serverB.parentSpanID == clientA.spanID)
        #expect(clientB.parentSpanID == serverB.spanID)
        #expect(serverC.parentSpanID == clientB.spanID)
        #expect(Set([clientA.spanID, serverB.spanID, clientB.spanID, serverC.spanID]).count == 4)

        #expect(serverC.attributes.get("rpc.system") == .string("micro"))
        #expect(serverC.attributes.get("rpc.service") == .string("c"))
        #expect(serverC.attributes.get("rpc.method") == .string("C.Call"))
        #expect(serverC.attributes.get("micro.attempt") == .int64(1))
        #expect(serverC.attributes.get("rpc.status_code") == .int64(0))
        #expect(clientA.attributes.get("rpc.service") == .string("b"))
        #expect(clientA.attributes.get("rpc.method") == .string("B.Call"))
        #expect(clientA.attributes.get("micro.attempts") == .int64(1))
        #expect(clientA.attributes.get("rpc.status_code") == .int64(0))
        #expect(clientB.attributes.get("micro.attempts") == .int64(1))
        #expect(serverB.attributes.get("micro.attempt") == .int64(1))

        // The context travelled in the metadata, as the in-memory tracer's keys.
        let cSaw = try #require(hops.seenByC.all.first)
        #expect(cSaw[InMemoryTracer.traceIDKey] == clientA.traceID)
        #expect(cSaw[InMemoryTracer.spanIDKey] == clientB.spanID)
        await a.stop()
        await hops.stop()
    }

    @Test("a retried call is one client span with micro.attempts 2; the server span says micro.attempt 2")
    func attemptsCounted() async throws {
        let tracer = InMemoryTracer()
        let s = try await RunningServer.start(configure: { $0.use { TracingMiddleware(tracer: tracer) } }) { server in
            server.handle("Echo.Call") { r, _ in Response(body: r.body) }
        }
        let selector = OrderedSelector([deadAddress(), s.address])
        let a = RunningClient.start(selector: selector) { config in
            config.backoff = Backoff(base: .microseconds(100), maximum: .milliseconds(1))
            config.use { TracingMiddleware(tracer: tracer) }
        }
        _ = try await a.client.call(Request(service: "svc", endpoint: "Echo.Call", body: [1]), options: CallOptions(retries: 2))
        let spans = tracer.finishedSpans
        let client = try Self.span(spans, "svc/Echo.Call", .client)
        let server = try Self.span(spans, "svc/Echo.Call", .server)
        #expect(client.attributes.get("micro.attempts") == .int64(2))
        #expect(client.attributes.get("micro.node") == .string("n1"))
        #expect(server.attributes.get("micro.attempt") == .int64(2))
        #expect(server.parentSpanID == client.spanID)
        await a.stop()
        await s.stop()
    }

    @Test("a failed call: error status and code on the spans of every hop it failed through")
    func failureRecorded() async throws {
        let tracer = InMemoryTracer()
        let hops = try await Hops.start(tracer: tracer, cFails: true)
        let a = RunningClient.start { $0.use { TracingMiddleware(tracer: tracer) } }
        let e = try #require(await outcome(a.client, Request(service: "b", endpoint: "B.Call", body: [1]),
                                           CallOptions(retries: 0, address: hops.b.address)).rpcError)
        #expect(e.code == .notFound, "b's handler rethrows c's error, with its code")
        let spans = tracer.finishedSpans
        let notFound = SpanAttribute.int64(Int64(StatusCode.notFound.rawValue))
        let hopsFailedThrough: [(String, SpanKind)] = [("c/C.Call", .server), ("c/C.Call", .client), ("b/B.Call", .server), ("b/B.Call", .client)]
        for (name, kind) in hopsFailedThrough {
            let span = try Self.span(spans, name, kind)
            #expect(span.status?.code == .error, "\(kind) \(name)")
            #expect(span.errors.count == 1, "\(kind) \(name)")
            #expect(span.attributes.get("rpc.status_code") == notFound, "\(kind) \(name)")
        }
        await a.stop()
        await hops.stop()
    }

    @Test("with a W3C tracer, traceparent with A's trace id and tracestate arrive in C's handler metadata")
    func w3cPropagation() async throws {
        let tracer = W3CTracer()
        let hops = try await Hops.start(tracer: tracer)
        let a = RunningClient.start { $0.use { TracingMiddleware(tracer: tracer) } }
        var context = ServiceContext.topLevel
        context.traceState = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        let bAddress = hops.b.address
        let client = a.client
        let r = try await ServiceContext.$current.withValue(context) {
            try await client.call(Request(service: "b", endpoint: "B.Call", body: [1]), options: CallOptions(retries: 0, address: bAddress))
        }
        #expect(r.body == [1, 2, 3])

        let spans = tracer.inner.finishedSpans
        let clientA = try Self.span(spans, "b/B.Call", .client)
        let clientB = try Self.span(spans, "c/C.Call", .client)
        #expect(clientA.traceID.count == 32 && clientA.spanID.count == 16)

        let bSaw = try #require(hops.seenByB.all.first)
        #expect(bSaw["traceparent"] == "00-\(clientA.traceID)-\(clientA.spanID)-01")
        let cSaw = try #require(hops.seenByC.all.first)
        let traceparent = try #require(cSaw["traceparent"], "C's metadata: \(cSaw)")
        let parts = traceparent.split(separator: "-").map(String.init)
        #expect(parts.count == 4)
        #expect(parts.first == "00")
        #expect(parts.dropFirst().first == clientA.traceID, "C sees A's trace id")
        #expect(parts.dropFirst(2).first == clientB.spanID, "and B's client span as its parent")
        #expect(parts.last == "01")
        #expect(cSaw["tracestate"] == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", "tracestate is carried through B")
        #expect(cSaw[InMemoryTracer.traceIDKey] == nil, "only the W3C headers travel")
        // The server spans continued the W3C trace.
        let serverC = try Self.span(spans, "c/C.Call", .server)
        #expect(serverC.traceID == clientA.traceID)
        #expect(serverC.parentSpanID == clientB.spanID)
        await a.stop()
        await hops.stop()
    }
}
