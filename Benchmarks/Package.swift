// swift-tools-version:6.1
// Benchmarks of swift-micro, kept apart from the library so that it depends on nothing extra.
// Run: swift package --package-path Benchmarks --allow-writing-to-package-directory benchmark --no-progress
// Check against the committed thresholds (Benchmarks/Thresholds): Benchmarks/check-thresholds
import PackageDescription

let package = Package(
    name: "swift-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-micro", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(
            name: "TransportBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MicroEventLoop", package: "swift-micro"),
                .product(name: "MicroFraming", package: "swift-micro"),
                .product(name: "MicroCore", package: "swift-micro"),
                .product(name: "MicroUVTransport", package: "swift-micro"),
            ],
            path: "Benchmarks/TransportBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RPCBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MicroCore", package: "swift-micro"),
                .product(name: "MicroEventLoop", package: "swift-micro"),
                .product(name: "MicroInMemory", package: "swift-micro"),
                .product(name: "MicroMiddleware", package: "swift-micro"),
                .product(name: "MicroRPC", package: "swift-micro"),
                .product(name: "MicroSelector", package: "swift-micro"),
                .product(name: "MicroUVTransport", package: "swift-micro"),
            ],
            path: "Benchmarks/RPCBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
