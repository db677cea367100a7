// swift-tools-version:6.1
// Benchmarks of swift-micro, kept apart from the library so that it depends on nothing extra.
// Run: swift package --package-path Benchmarks --allow-writing-to-package-directory benchmark --no-progress
import PackageDescription

let package = Package(
    name: "swift-micro-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-micro", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TransportBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "MicroEventLoop", package: "swift-micro"),
                .product(name: "MicroFraming", package: "swift-micro"),
                .product(name: "MicroCore", package: "swift-micro"),
                .product(name: "MicroUVTransport", package: "swift-micro"),
            ],
            path: "Benchmarks/TransportBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)
