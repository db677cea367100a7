// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "swift-micro",
    products: [
        .library(name: "MicroCore", targets: ["MicroCore"]),
        .library(name: "MicroInMemory", targets: ["MicroInMemory"]),
        .library(name: "MicroEventLoop", targets: ["MicroEventLoop"]),
        .library(name: "MicroFraming", targets: ["MicroFraming"]),
        .library(name: "MicroUVTransport", targets: ["MicroUVTransport"]),
        .library(name: "MicroTLS", targets: ["MicroTLS"]),
        .library(name: "MicroHTTP", targets: ["MicroHTTP"]),
        .library(name: "MicroHTTPServer", targets: ["MicroHTTPServer"]),
        .library(name: "MicroRegistry", targets: ["MicroRegistry"]),
        .library(name: "MicroSelector", targets: ["MicroSelector"]),
        .library(name: "MicroBroker", targets: ["MicroBroker"]),
        .library(name: "MicroRPC", targets: ["MicroRPC"]),
        .library(name: "MicroMiddleware", targets: ["MicroMiddleware"]),
        .library(name: "Micro", targets: ["Micro"]),
        .executable(name: "micro", targets: ["micro"]),
        .executable(name: "micro-echo", targets: ["micro-echo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        // The metrics backend of `/metrics` (the sidecar, the admin endpoint) and of the bench's stock chain (no NIO).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
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
        // The shared vocabulary: transport protocols and stream parts, heads, status codes and RPCError, metadata,
        // time, and the Registry, Selector and Broker protocols. Imports nothing of ours.
        .target(name: "MicroCore", swiftSettings: strict),
        // In-memory transport, registry and broker: for tests and single-process use.
        .target(name: "MicroInMemory", dependencies: ["MicroCore"], swiftSettings: strict),
        .target(name: "MicroEventLoop", dependencies: ["CLibUV"], swiftSettings: strict),
        .target(name: "MicroTLS", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "MicroFraming", dependencies: ["MicroCore"], swiftSettings: strict),
        .target(
            name: "MicroUVTransport",
            dependencies: [
                "MicroCore", "MicroEventLoop", "MicroFraming", "MicroTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // A small HTTP/1.1 client on the libuv loop (etcd's JSON gateway speaks HTTP/1.1).
        .target(name: "MicroHTTP", dependencies: ["MicroEventLoop"], swiftSettings: strict),
        // An HTTP/1.1 server on the libuv loops (the sidecar and the admin endpoint), with swift-http-types' model.
        .target(
            name: "MicroHTTPServer",
            dependencies: ["MicroEventLoop", .product(name: "HTTPTypes", package: "swift-http-types")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroHTTPServerTests",
            dependencies: ["MicroHTTPServer", "MicroEventLoop", "MicroTestSupport", .product(name: "HTTPTypes", package: "swift-http-types")],
            swiftSettings: strict
        ),
        .target(name: "MicroRegistry", dependencies: ["MicroCore", "MicroInMemory", "MicroEventLoop", "MicroHTTP"], swiftSettings: strict),
        .target(
            name: "MicroSelector",
            dependencies: ["MicroCore", .product(name: "Logging", package: "swift-log"), .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        // Asynchronous messages by topic: in memory, and embedded (no server; every process of one machine).
        .target(
            name: "MicroBroker",
            dependencies: [
                "MicroCore", "MicroRPC", "MicroEventLoop", "MicroUVTransport", "MicroRegistry",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "MicroRPC",
            dependencies: [
                "MicroCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // Async code runs on its caller's executor (the event loop for handlers and loop-bound callers):
            // no executor switch per call.
            swiftSettings: strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // Stock middleware: circuit breaker, rate limits, adaptive concurrency, auth, logging, metrics, tracing.
        .target(
            name: "MicroMiddleware",
            dependencies: [
                "MicroCore", "MicroRPC",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // The umbrella: MicroService (registry, broker, transport, selector, server and client chosen by flags and
        // MICRO_* variables) and ServiceFlags, the global flags of `micro` and of programs built on it.
        .target(
            name: "Micro",
            dependencies: [
                "MicroCore", "MicroRPC", "MicroRegistry", "MicroSelector", "MicroBroker", "MicroInMemory", "MicroEventLoop",
                "MicroUVTransport", "MicroTLS", "MicroHTTPServer", "MicroMiddleware",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]
        ),
        // `micro`: call, stream, publish, subscribe, services, describe, health, registry, bench, serve example.
        .executableTarget(
            name: "micro",
            dependencies: [
                "Micro", "MicroCore", "MicroRPC", "MicroEventLoop", "MicroUVTransport", "MicroTLS", "MicroBroker", "MicroRegistry", "MicroMiddleware",
                "CLibUV", "MicroInMemory", "MicroSelector", .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroTests",
            dependencies: [
                "Micro", "MicroCore", "MicroRPC", "MicroInMemory", "MicroRegistry", "MicroMiddleware", "MicroTestSupport", "MicroCoreTestSupport",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "micro-echo",
            dependencies: ["MicroCore", "MicroEventLoop", "MicroFraming", "MicroUVTransport", "MicroTLS"],
            swiftSettings: strict
        ),
        // MicroRPC's unit tests: on the in-memory transport, no sockets.
        .testTarget(
            name: "MicroRPCTests",
            dependencies: [
                "MicroRPC", "MicroCore", "MicroInMemory", "MicroSelector", "MicroTestSupport", "MicroCoreTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strict
        ),
        // MicroRPC over loopback: real sockets, child processes, registries shared between processes.
        .testTarget(
            name: "MicroRPCLoopbackTests",
            dependencies: [
                "MicroRPC", "MicroCore", "MicroInMemory", "MicroUVTransport", "MicroEventLoop", "MicroRegistry", "MicroSelector",
                "MicroFraming", "MicroTestSupport", "MicroCoreTestSupport", "MicroMiddleware", "MicroTLS",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroBrokerTests",
            dependencies: [
                "MicroBroker", "MicroCore", "MicroInMemory", "MicroRPC", "MicroEventLoop", "MicroRegistry", "MicroUVTransport", "MicroTestSupport",
                "MicroCoreTestSupport",
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroMiddlewareTests",
            dependencies: [
                "MicroMiddleware", "MicroRPC", "MicroCore", "MicroInMemory", "MicroSelector", "MicroTestSupport", "MicroCoreTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "MicroEventLoopTests", dependencies: ["MicroEventLoop"], swiftSettings: strict),
        .testTarget(name: "MicroFramingTests", dependencies: ["MicroFraming", "MicroCore"], swiftSettings: strict),
        .testTarget(name: "MicroCoreTests", dependencies: ["MicroCore", "MicroCoreTestSupport"], swiftSettings: strict),
        .testTarget(name: "MicroInMemoryTests", dependencies: ["MicroInMemory", "MicroCore", "MicroCoreTestSupport"], swiftSettings: strict),
        // Helpers for tests of the core vocabulary and its implementations (no libuv).
        .target(name: "MicroCoreTestSupport", dependencies: ["MicroCore"], path: "Tests/MicroCoreTestSupport", swiftSettings: strict),
        // Helpers shared by the test targets (certificates made with the openssl command, running processes).
        .target(name: "MicroTestSupport", dependencies: ["MicroEventLoop", "MicroHTTP", "MicroCore", "MicroRPC", "MicroCoreTestSupport"], path: "Tests/MicroTestSupport", swiftSettings: strict),
        .testTarget(name: "MicroTLSTests", dependencies: ["MicroTLS", "MicroTestSupport"], swiftSettings: strict),
        .testTarget(name: "MicroHTTPTests", dependencies: ["MicroHTTP", "MicroEventLoop"], swiftSettings: strict),
        .testTarget(
            name: "MicroRegistryTests",
            dependencies: ["MicroRegistry", "MicroCore", "MicroInMemory", "MicroHTTP", "MicroEventLoop", "MicroTestSupport", "MicroCoreTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroSelectorTests",
            dependencies: ["MicroSelector", "MicroCore", "MicroInMemory", "MicroRegistry", "MicroEventLoop", "MicroTestSupport", "MicroCoreTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "MicroUVTransportTests",
            dependencies: [
                "MicroUVTransport", "MicroCore", "MicroEventLoop", "MicroFraming", "MicroTLS", "MicroTestSupport", "MicroCoreTestSupport", "CLibUV",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
