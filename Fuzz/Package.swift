// swift-tools-version:6.0
// libFuzzer targets for the parsers of MicroFraming, MicroHTTP, MicroHTTPServer, MicroCore's and MicroRegistry's service
// records, the etcd registry's gateway answers and MicroTLS's server sessions. Build and run them with `Fuzz/run TARGET|all SECONDS`
// (see Fuzz/README.md): without --sanitize=fuzzer the binaries link but do nothing.
import PackageDescription

let package = Package(
    name: "swift-micro-fuzz",
    dependencies: [
        .package(name: "swift-micro", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "FuzzFraming",
            dependencies: [.product(name: "MicroFraming", package: "swift-micro"), .product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzHTTPResponse",
            dependencies: [.product(name: "MicroHTTP", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzHeads",
            dependencies: [.product(name: "MicroFraming", package: "swift-micro"), .product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzHTTPRequest",
            dependencies: [.product(name: "MicroHTTPServer", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzSettings",
            dependencies: [.product(name: "MicroFraming", package: "swift-micro"), .product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzEtcdJSON",
            dependencies: [.product(name: "MicroRegistry", package: "swift-micro"), .product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzRegistryNode",
            dependencies: [.product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzLocalRegistryFile",
            dependencies: [.product(name: "MicroRegistry", package: "swift-micro"), .product(name: "MicroCore", package: "swift-micro")]
        ),
        .executableTarget(
            name: "FuzzTLSRecords",
            dependencies: [.product(name: "MicroTLS", package: "swift-micro")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
