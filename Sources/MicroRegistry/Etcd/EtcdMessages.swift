public import MicroCore
import Foundation

// The JSON shapes of etcd's v3 gateway (protobuf JSON: int64 as strings, bytes as base64, defaults omitted).

/// An int64 that etcd sends as a JSON string (and accepts as one).
struct EtcdInt: Codable, Hashable, Sendable {
    var value: Int64
    init(_ value: Int64) { self.value = value }
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self), let v = Int64(s) {
            value = v
        } else {
            value = try c.decode(Int64.self)
        }
    }
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

struct EtcdHeader: Codable {
    var revision: EtcdInt?
}

struct EtcdKeyValue: Codable {
    var key: String?
    var value: String?
    var create_revision: EtcdInt?
    var mod_revision: EtcdInt?
    var version: EtcdInt?
    var lease: EtcdInt?

    var keyText: String { key.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "" }
    var valueData: Data? { value.flatMap { Data(base64Encoded: $0) } }
}

/// Any answer whose content we do not need.
struct EtcdHeaderOnly: Codable {
    var header: EtcdHeader?
}

struct EtcdRangeRequest: Codable {
    var key: String
    var range_end: String?
    var serializable: Bool?
}

struct EtcdRangeResponse: Codable {
    var header: EtcdHeader?
    var kvs: [EtcdKeyValue]?
}

struct EtcdPutRequest: Codable {
    var key: String
    var value: String
    var lease: EtcdInt?
}

struct EtcdDeleteRequest: Codable {
    var key: String
    var range_end: String?
}

struct EtcdLeaseGrantRequest: Codable {
    var TTL: EtcdInt
}

struct EtcdLeaseGrantResponse: Codable {
    var ID: EtcdInt?
    var TTL: EtcdInt?
    var error: String?
}

struct EtcdLeaseIDRequest: Codable {
    var ID: EtcdInt
}

struct EtcdKeepAliveResponse: Codable {
    struct Result: Codable {
        var ID: EtcdInt?
        var TTL: EtcdInt?
    }
    var result: Result?
    var error: EtcdStreamError?
}

struct EtcdStreamError: Codable {
    var grpc_code: Int?
    var http_code: Int?
    var message: String?
}

struct EtcdWatchCreate: Codable {
    struct Create: Codable {
        var key: String
        var range_end: String
        var start_revision: EtcdInt?
        var prev_kv: Bool
    }
    var create_request: Create
}

struct EtcdWatchMessage: Codable {
    struct Event: Codable {
        var type: String?
        var kv: EtcdKeyValue?
        var prev_kv: EtcdKeyValue?
    }
    struct Result: Codable {
        var header: EtcdHeader?
        var created: Bool?
        var canceled: Bool?
        var compact_revision: EtcdInt?
        var cancel_reason: String?
        var events: [Event]?
    }
    var result: Result?
    var error: EtcdStreamError?
}

/// The error body of a failed unary gateway call.
struct EtcdErrorBody: Codable {
    var error: String?
    var message: String?
    var code: Int?
}

extension String {
    var base64: String { Data(utf8).base64EncodedString() }
}

/// The end of a prefix range: the prefix with its last byte incremented (etcd's `clientv3.GetPrefixRangeEnd`).
func prefixRangeEnd(_ prefix: String) -> String {
    var bytes = Array(prefix.utf8)
    while let last = bytes.last {
        if last < 0xff {
            bytes[bytes.count - 1] = last + 1
            return Data(bytes).base64EncodedString()
        }
        bytes.removeLast()
    }
    return Data([0]).base64EncodedString()
}

// MARK: - What the registry makes of the gateway's answers

/// A key of a range answer whose value is a service.
@_spi(Fuzzing) public struct EtcdRecord: Sendable, Hashable {
    public var key: String
    public var createRevision: Int64
    public var service: Service

    public init(key: String, createRevision: Int64, service: Service) {
        self.key = key
        self.createRevision = createRevision
        self.service = service
    }
}

/// How ``EtcdRegistry`` and its watcher read the bodies etcd's gateway answers with: every byte they take from
/// etcd goes through one of these (the watch stream through ``EtcdWatchLines`` and ``EtcdWatchView``).
///
/// Not API: `@_spi(Fuzzing)`, public only for the fuzz targets (Fuzz/FuzzEtcdJSON), which cannot see internal code.
@_spi(Fuzzing) public enum EtcdAnswer {
    static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(body))
    }

    /// An answer whose content is not needed (put, delete, revoke): it must be a JSON object.
    public static func headerOnly(_ body: [UInt8]) throws {
        _ = try decode(EtcdHeaderOnly.self, body)
    }

    /// A range answer: its revision (0 when absent) and the keys whose value is a service, in the answer's order.
    public static func range(_ body: [UInt8]) throws -> (revision: Int64, records: [EtcdRecord]) {
        let response = try decode(EtcdRangeResponse.self, body)
        let records = (response.kvs ?? []).compactMap { kv -> EtcdRecord? in
            guard let data = kv.valueData, let service = try? JSONDecoder().decode(Service.self, from: data) else { return nil }
            return EtcdRecord(key: kv.keyText, createRevision: kv.create_revision?.value ?? 0, service: service)
        }
        return (response.header?.revision?.value ?? 0, records)
    }

    /// A lease grant: the lease's ID. Throws ``RegistryError/badResponse(_:)`` when etcd granted none.
    public static func leaseGrant(_ body: [UInt8]) throws -> Int64 {
        let grant = try decode(EtcdLeaseGrantResponse.self, body)
        guard let lease = grant.ID?.value, grant.error == nil || grant.error!.isEmpty else {
            throw RegistryError.badResponse("lease grant: \(grant.error ?? "no ID")")
        }
        return lease
    }

    /// A keep-alive answer: whether the lease lives on (etcd answers a TTL of 0, or none, for a lease it lost).
    public static func keepAlive(_ body: [UInt8]) throws -> Bool {
        (try decode(EtcdKeepAliveResponse.self, body).result?.TTL?.value ?? 0) > 0
    }

    /// The body of a failed call as text for an error: etcd's message, else the first 200 bytes.
    public static func errorText(_ body: [UInt8]) -> String {
        if let e = try? decode(EtcdErrorBody.self, body) {
            return e.message ?? e.error ?? ""
        }
        return String(decoding: body.prefix(200), as: UTF8.self)
    }
}
