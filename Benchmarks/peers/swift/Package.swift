// swift-tools-version:6.0
// Peer servers for swift-micro's side-by-side benchmarks. This package is separate from
// swift-micro on purpose: the library never depends on SwiftNIO, only these peers do.
import PackageDescription

let package = Package(
    name: "swift-micro-peers",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
    ],
    targets: [
        // Command-line parsing, the "listening" line and signal handling shared by both servers.
        .target(name: "PeerSupport"),
        .executableTarget(
            name: "nio-echo",
            dependencies: [
                "PeerSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "grpc-swift-echo",
            dependencies: [
                "PeerSupport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
