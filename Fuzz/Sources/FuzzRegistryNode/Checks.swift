// The check behind FuzzRegistryNode: a service as the registries store it (`Service`'s Codable form in JSON: the
// value of an etcd key, the `service` of a local registry file) decodes without crashing, and what decodes encodes
// (as the etcd registry writes it, and sorted as the local registry does) into JSON that decodes to the same
// value; the sorted encoding is stable. `validate()` and `mergeByVersion` keep their promises on what decodes.
import Foundation
import MicroCore

/// The input's first byte picks what the rest is decoded as (0: a service, 1: a list of services, 2: a node,
/// 3: an endpoint); the rest is JSON.
func checkNode(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let json = Data(UnsafeRawBufferPointer(rebasing: data[1...]))
    switch control % 4 {
    case 0:
        guard let service = roundTrip(Service.self, json) else { return }
        checkValidate(service)
    case 1:
        guard let services = roundTrip([Service].self, json) else { return }
        services.forEach(checkValidate)
        checkMerge(services)
    case 2:
        _ = roundTrip(Node.self, json)
    default:
        _ = roundTrip(Endpoint.self, json)
    }
}

/// Decodes `json`; when it decodes, encodes it both ways and checks that each decodes to the same value.
func roundTrip<T: Codable & Equatable>(_ type: T.Type, _ json: Data) -> T? {
    guard let value = try? JSONDecoder().decode(T.self, from: json) else { return nil }
    for formatting in [JSONEncoder.OutputFormatting(), .sortedKeys] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = formatting
        let bytes: Data
        do {
            bytes = try encoder.encode(value)
        } catch {
            fatalError("a decoded \(T.self) does not encode: \(error)")
        }
        let again: T
        do {
            again = try JSONDecoder().decode(T.self, from: bytes)
        } catch {
            fatalError("the encoded \(T.self) does not decode: \(error)\n\(String(decoding: bytes, as: UTF8.self))")
        }
        precondition(again == value, "round trip differs: \(value) vs \(again)")
        if formatting == .sortedKeys {
            precondition((try? encoder.encode(again)) == bytes, "the sorted encoding of \(T.self) is not stable")
        }
    }
    return value
}

/// `validate()` fails exactly for an empty name or a node without id, and only with `RegistryError.invalid`.
func checkValidate(_ service: Service) {
    let valid = !service.name.isEmpty && !service.nodes.contains { $0.id.isEmpty }
    do {
        try service.validate()
        precondition(valid, "validate() accepted \(service)")
    } catch RegistryError.invalid {
        precondition(!valid, "validate() rejected \(service)")
    } catch {
        fatalError("validate() threw \(error)")
    }
}

/// `mergeByVersion` gives one service per version, in order of first appearance, with the name of its first record
/// and the node ids of all its records.
func checkMerge(_ records: [Service]) {
    let merged = mergeByVersion(records)
    var versions: [String] = []
    var nodeIDs: [String: Set<String>] = [:]
    for r in records {
        if !versions.contains(r.version) { versions.append(r.version) }
        for n in r.nodes { nodeIDs[r.version, default: []].insert(n.id) }
    }
    precondition(merged.map(\.version) == versions, "mergeByVersion: versions \(merged.map(\.version)), expected \(versions)")
    for s in merged {
        let ids = s.nodes.map(\.id)
        precondition(Set(ids) == nodeIDs[s.version] ?? [], "mergeByVersion: nodes \(ids) of \(s.version)")
        precondition(s.name == records.first { $0.version == s.version }!.name, "mergeByVersion changed the name")
    }
}
