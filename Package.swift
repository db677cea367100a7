// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-micro",
    products: [
        .library(name: "MicroEventLoop", targets: ["MicroEventLoop"]),
        .library(name: "MicroFraming", targets: ["MicroFraming"]),
        .library(name: "MicroTransport", targets: ["MicroTransport"]),
        .library(name: "MicroUVTransport", targets: ["MicroUVTransport"]),
        .library(name: "MicroTLS", targets: ["MicroTLS"]),
        .executable(name: "micro-echo", targets: ["micro-echo"]),
        .executable(name: "micro-bench", targets: ["micro-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "MicroEventLoop", dependencies: ["CLibUV"], swiftSettings: strict),
        .target(name: "MicroTLS", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "MicroFraming", swiftSettings: strict),
        .target(name: "MicroTransport", dependencies: ["MicroFraming"], swiftSettings: strict),
        .target(
            name: "MicroUVTransport",
            dependencies: [
                "MicroEventLoop", "MicroFraming", "MicroTransport", "MicroTLS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "micro-echo",
            dependencies: ["MicroEventLoop", "MicroFraming", "MicroUVTransport", "MicroTLS"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "micro-bench",
            dependencies: ["MicroEventLoop", "MicroFraming", "MicroTransport", "MicroUVTransport", "MicroTLS"],
            swiftSettings: strict
        ),
        .testTarget(name: "MicroEventLoopTests", dependencies: ["MicroEventLoop"], swiftSettings: strict),
        .testTarget(name: "MicroFramingTests", dependencies: ["MicroFraming"], swiftSettings: strict),
        .testTarget(name: "MicroTransportTests", dependencies: ["MicroTransport"], swiftSettings: strict),
        // Helpers shared by the test targets (certificates made with the openssl command, running processes).
        .target(name: "MicroTestSupport", path: "Tests/MicroTestSupport", swiftSettings: strict),
        .testTarget(name: "MicroTLSTests", dependencies: ["MicroTLS", "MicroTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "MicroUVTransportTests",
            dependencies: [
                "MicroUVTransport", "MicroEventLoop", "MicroFraming", "MicroTransport", "MicroTLS", "MicroTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
