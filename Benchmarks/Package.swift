// swift-tools-version:6.1
// Kernel benchmarks (package-benchmark). A separate package so the engine's build and tests
// do not compile the benchmark harness. Run: cd Benchmarks && swift package benchmark
import PackageDescription
import Foundation

// SwiftPM names a path dependency after its folder, which differs between checkouts.
let engine = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "vggtl-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "Kernels",
            dependencies: [.product(name: "VGGTL", package: engine), .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/Kernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
