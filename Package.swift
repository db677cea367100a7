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
        .executable(name: "micro-echo", targets: ["micro-echo"]),
        .executable(name: "micro-bench", targets: ["micro-bench"]),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(name: "MicroEventLoop", dependencies: ["CLibUV"], swiftSettings: strict),
        .target(name: "MicroFraming", swiftSettings: strict),
        .target(name: "MicroTransport", dependencies: ["MicroFraming"], swiftSettings: strict),
        .target(
            name: "MicroUVTransport",
            dependencies: ["MicroEventLoop", "MicroFraming", "MicroTransport"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "micro-echo",
            dependencies: ["MicroEventLoop", "MicroFraming", "MicroUVTransport"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "micro-bench",
            dependencies: ["MicroEventLoop", "MicroFraming", "MicroTransport", "MicroUVTransport"],
            swiftSettings: strict
        ),
        .testTarget(name: "MicroEventLoopTests", dependencies: ["MicroEventLoop"], swiftSettings: strict),
        .testTarget(name: "MicroFramingTests", dependencies: ["MicroFraming"], swiftSettings: strict),
        .testTarget(name: "MicroTransportTests", dependencies: ["MicroTransport"], swiftSettings: strict),
        .testTarget(
            name: "MicroUVTransportTests",
            dependencies: ["MicroUVTransport", "MicroEventLoop", "MicroFraming", "MicroTransport"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
