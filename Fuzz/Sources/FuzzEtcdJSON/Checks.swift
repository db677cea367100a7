// The check behind FuzzEtcdJSON: every function the etcd registry reads etcd's answers with (`EtcdAnswer`: range,
// lease grant, keep-alive, answers without content, error bodies) and the watch stream (`EtcdWatchLines` splits it,
// `EtcdWatchView` applies its messages) never crash, and keep their promises: the splitter hands out exactly the
// newline-terminated lines in any slicing and keeps only the unfinished one; a resync reports exactly the
// differences; a watch message changes what the watch knows as its events say. What a range answer holds, written
// back as etcd would send it (in a range answer, and as watch PUTs and DELETEs), reads back the same.
@_spi(Fuzzing) import MicroRegistry
import Foundation
import MicroCore

let registryPrefix = "/micro/registry/"

/// The input's first byte is the watch stream's chunk size (0: the whole input in one chunk); the rest is one
/// answer body, and the watch stream: newline-delimited messages whose first line is taken as the range answer the
/// watch starts from.
func checkEtcd(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let body = Array(data[1...])

    // Unary answers: whatever the body, an answer or an error, never a crash.
    try? EtcdAnswer.headerOnly(body)
    _ = try? EtcdAnswer.leaseGrant(body)
    _ = try? EtcdAnswer.keepAlive(body)
    _ = EtcdAnswer.errorText(body)
    if let range = try? EtcdAnswer.range(body) { checkRangeRoundTrip(range) }

    // The watch stream.
    var view = EtcdWatchView(registryPrefix: registryPrefix)
    let start = (try? EtcdAnswer.range(Array(body.prefix { $0 != 10 }))) ?? (revision: 0, records: [])
    resync(&view, start)
    var expectedLines = body.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
    let unfinished = expectedLines.removeLast()
    var lines = EtcdWatchLines()
    var got: [[UInt8]] = []
    var stopped = false
    let step = control == 0 ? max(body.count, 1) : Int(control)
    var offset = 0
    var unterminated = 0  // bytes since the last newline
    while offset < body.count, !stopped {
        let chunk = Array(body[offset..<min(body.count, offset + step)])
        offset += chunk.count
        stopped = !lines.feed(chunk) { line in
            got.append(line)
            return apply(&view, line)
        }
        unterminated = chunk.lastIndex(of: 10).map { chunk.count - $0 - 1 } ?? unterminated + chunk.count
        if !stopped {
            precondition(lines.pendingByteCount == unterminated, "the splitter keeps \(lines.pendingByteCount) bytes, expected \(unterminated)")
        }
    }
    precondition(got == Array(expectedLines.prefix(got.count)), "the splitter handed out other lines")
    if !stopped {
        precondition(got.count == expectedLines.count, "the splitter handed out \(got.count) lines, expected \(expectedLines.count)")
        precondition(lines.pendingByteCount == unfinished.count)
    }
    // After a broken stream the watch reads the prefix again and reports the differences (none the second time).
    resync(&view, start)
    resync(&view, start)
}

/// Resyncs `view` with `range` and checks the events against the difference between what it knew and `range`.
func resync(_ view: inout EtcdWatchView, _ range: (revision: Int64, records: [EtcdRecord])) {
    let before = entries(view)
    var now: [String: Entry] = [:]
    for r in range.records { now[r.key] = Entry(createRevision: r.createRevision, service: r.service) }
    var expected: [RegistryEvent: Int] = [:]
    for (key, entry) in now {
        if let old = before[key] {
            if old.service != entry.service { expected[RegistryEvent(kind: .update, service: entry.service), default: 0] += 1 }
        } else {
            expected[RegistryEvent(kind: .create, service: entry.service), default: 0] += 1
        }
    }
    for (key, entry) in before where now[key] == nil { expected[RegistryEvent(kind: .delete, service: entry.service), default: 0] += 1 }
    let events = view.resync(range)
    precondition(events.reduce(into: [:]) { $0[$1, default: 0] += 1 } == expected, "resync reported \(events), expected \(expected)")
    precondition(entries(view) == now, "resync left the watch knowing \(view.known), expected \(now)")
    precondition(view.nextRevision == (range.revision == .max ? .max : range.revision + 1), "resync: next revision \(view.nextRevision) after \(range.revision)")
}

/// What a watch knows of a key.
struct Entry: Hashable {
    var createRevision: Int64
    var service: Service
}

func entries(_ view: EtcdWatchView) -> [String: Entry] {
    view.known.mapValues { Entry(createRevision: $0.createRevision, service: $0.service) }
}

/// Applies one line; checks that what the watch knows changed as the events say. Returns whether the watch goes on.
func apply(_ view: inout EtcdWatchView, _ line: [UInt8]) -> Bool {
    let before = view
    guard let update = view.apply(line) else {
        precondition(view.known == before.known && view.nextRevision == before.nextRevision, "a skipped line changed the watch")
        return true
    }
    guard update.goOn else {
        precondition(update.events.isEmpty && view.known == before.known && view.nextRevision == before.nextRevision,
                     "a cancelled watch applied its events")
        return false
    }
    var creates = 0
    var deletes = 0
    for event in update.events {
        switch event.kind {
        case .create: creates += 1
        case .update: break
        case .delete: deletes += 1
        case .interrupted, .resynced: fatalError("a watch message reported \(event.kind)")
        }
    }
    let grown = view.known.count - before.known.count
    precondition(grown <= creates && grown >= creates - deletes, "\(creates) creates and \(deletes) deletes, \(grown) more keys known")
    return true
}

// MARK: - Round trips

/// The range answer's records, written as etcd sends them, read back the same: in a range answer, and (the first
/// four) as watch messages (a PUT creates, a second one updates, a DELETE with its previous value deletes; a DELETE
/// without it names the service and node of its key).
func checkRangeRoundTrip(_ range: (revision: Int64, records: [EtcdRecord])) {
    let kvs = range.records.map { KV(key: $0.key, value: $0.service, createRevision: $0.createRevision, modRevision: 7) }
    let answer = json(RangeAnswer(header: Header(revision: String(range.revision)), kvs: kvs, count: String(kvs.count)))
    guard let back = try? EtcdAnswer.range(answer) else { fatalError("a range answer written back does not decode") }
    precondition(back.revision == range.revision && back.records == range.records, "range round trip differs")

    for record in range.records.prefix(4) {  // the first few: each costs a dozen JSON encodings and decodings
        var view = EtcdWatchView(registryPrefix: registryPrefix)
        let kv = KV(key: record.key, value: record.service, createRevision: record.createRevision, modRevision: 41)
        let put = json(WatchLine(result: .init(header: Header(revision: "41"), events: [.init(type: nil, kv: kv, prev_kv: nil)])))
        expect(&view, put, [RegistryEvent(kind: .create, service: record.service)])
        precondition(entries(view) == [record.key: Entry(createRevision: record.createRevision, service: record.service)])
        precondition(view.nextRevision == 42)
        expect(&view, put, [RegistryEvent(kind: .update, service: record.service)])
        let gone = KV(key: record.key, value: nil, createRevision: nil, modRevision: 43)
        let delete = json(WatchLine(result: .init(header: Header(revision: "43"), events: [.init(type: "DELETE", kv: gone, prev_kv: kv)])))
        var fresh = EtcdWatchView(registryPrefix: registryPrefix)
        expect(&fresh, delete, [RegistryEvent(kind: .delete, service: record.service)])
        expect(&view, delete, [RegistryEvent(kind: .delete, service: record.service)])
        precondition(view.known.isEmpty && view.nextRevision == 44)

        // A delete known only by its key: `<prefix><service>/<node id>`, escaped as the registry writes keys (which
        // it does only for a name and a node id that are not empty).
        guard let node = record.service.nodes.first, !record.service.name.isEmpty, !node.id.isEmpty else { continue }
        let key = registryPrefix + escapeKeyComponent(record.service.name) + "/" + escapeKeyComponent(node.id)
        let bare = json(WatchLine(result: .init(header: nil, events: [.init(type: "DELETE", kv: KV(key: key, value: nil, createRevision: nil, modRevision: nil), prev_kv: nil)])))
        expect(&fresh, bare, [RegistryEvent(kind: .delete, service: Service(name: record.service.name, version: "", nodes: [Node(id: node.id, address: "")]))])
    }
}

func expect(_ view: inout EtcdWatchView, _ line: [UInt8], _ events: [RegistryEvent]) {
    guard let update = view.apply(line) else { fatalError("a watch message written back does not decode: \(String(decoding: line, as: UTF8.self))") }
    precondition(update.goOn && update.events == events, "watch round trip: \(update.events), expected \(events)")
}

/// The registry's key escaping (letters, digits, `-`, `_` and a `.` not in front stay; every other byte is `%XX`),
/// written from its documentation.
func escapeKeyComponent(_ name: String) -> String {
    var out = ""
    for (i, b) in name.utf8.enumerated() {
        let c = Character(Unicode.Scalar(b))
        if c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || (c == "." && i > 0)) {
            out.append(c)
        } else {
            out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
        }
    }
    return out
}

// The gateway's JSON (protobuf JSON: int64 as strings, bytes as base64), written independently of the registry's types.

struct Header: Encodable {
    var cluster_id = "14841639068965178418"
    var revision: String
    init(revision: String) { self.revision = revision }
}

struct KV: Encodable {
    var key: String
    var value: Service?
    var createRevision: Int64?
    var modRevision: Int64?

    enum CodingKeys: String, CodingKey { case key, value, create_revision, mod_revision, version }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Data(key.utf8).base64EncodedString(), forKey: .key)
        if let value { try c.encode(try JSONEncoder().encode(value).base64EncodedString(), forKey: .value) }
        if let createRevision { try c.encode(String(createRevision), forKey: .create_revision) }
        if let modRevision { try c.encode(String(modRevision), forKey: .mod_revision) }
        if value != nil { try c.encode("1", forKey: .version) }
    }
}

struct RangeAnswer: Encodable {
    var header: Header
    var kvs: [KV]
    var count: String
}

struct WatchLine: Encodable {
    struct Event: Encodable {
        var type: String?
        var kv: KV
        var prev_kv: KV?
    }
    struct Result: Encodable {
        var header: Header?
        var events: [Event]
    }
    var result: Result
}

func json(_ value: some Encodable) -> [UInt8] {
    do {
        return Array(try JSONEncoder().encode(value))
    } catch {
        fatalError("cannot encode \(value): \(error)")
    }
}
