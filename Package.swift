// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "vggtl",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "VGGTL", targets: ["VGGTL"]),
        .executable(name: "vggtl", targets: ["vggtl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // System libraries from Debian (see .ci/run for the packages).
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL"),
        .systemLibrary(name: "CCLBlast", path: "Sources/CCLBlast"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Turns Kernels/*.cl into a name -> source table compiled into the library.
        .executableTarget(name: "EmbedKernelsTool", path: "Sources/EmbedKernelsTool"),
        .plugin(name: "EmbedKernels", capability: .buildTool(),
                dependencies: ["EmbedKernelsTool"], path: "Plugins/EmbedKernels"),
        // setjmp/longjmp error handling for libjpeg and libpng, which Swift cannot do.
        .target(name: "CImageSupport", path: "Sources/CImageSupport",
                linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),
        // IEEE half-float conversions (F16C where the CPU has it) for fp16 gradient compression.
        .target(name: "CHalf", path: "Sources/CHalf"),
        // The engine, one target per room; dependencies point down, so the layering in
        // DESIGN.md is the compiler's to keep (and LayeringTests checks every file's imports,
        // which SwiftPM does not). Only VGGTLBackends imports a concrete device.
        .target(name: "VGGTLTensors", path: "Sources/VGGTLTensors",
                linkerSettings: [.linkedLibrary("m")]),
        // Swift 5 mode: the CPU kernels split a tensor between threads with
        // DispatchQueue.concurrentPerform, each thread writing its own rows through raw pointers
        // (and calling OpenBLAS); Swift 6 rejects capturing those non-Sendable pointers in the
        // @Sendable closure. Wrapping each one in an @unchecked Sendable box would silence it
        // without proving anything, so this target keeps Swift 5 mode until the kernels take
        // their rows through a checked parallel-for.
        .target(name: "VGGTLCPU", dependencies: ["VGGTLTensors"], path: "Sources/VGGTLCPU",
                swiftSettings: [.swiftLanguageMode(.v5)],
                linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "VGGTLOpenCL", dependencies: ["VGGTLTensors", "COpenCL", "CCLBlast"], path: "Sources/VGGTLOpenCL",
                plugins: ["EmbedKernels"]),
        .target(name: "VGGTLBackends", dependencies: ["VGGTLTensors", "VGGTLCPU", "VGGTLOpenCL"], path: "Sources/VGGTLBackends"),
        .target(name: "VGGTLNN", dependencies: ["VGGTLTensors"], path: "Sources/VGGTLNN"),
        .target(name: "VGGTLOptim", dependencies: ["VGGTLTensors", "VGGTLNN"], path: "Sources/VGGTLOptim"),
        .target(name: "VGGTLData", dependencies: ["VGGTLTensors", "CJPEG", "CPNG", "CImageSupport", "CZlib"],
                path: "Sources/VGGTLData"),
        .target(name: "VGGTLIO", dependencies: ["VGGTLTensors", "CHDF5"], path: "Sources/VGGTLIO"),
        .target(name: "VGGTLModels", dependencies: ["VGGTLTensors", "VGGTLNN", "VGGTLIO", "VGGTLData"], path: "Sources/VGGTLModels"),
        .target(name: "VGGTLTrain", dependencies: ["VGGTLTensors", "VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLIO", "VGGTLModels"],
                path: "Sources/VGGTLTrain"),
        .target(name: "VGGTLDistributed", dependencies: ["VGGTLTensors", "VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLModels",
                                                         "VGGTLTrain", "CHalf"],
                path: "Sources/VGGTLDistributed", linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "VGGTLBench", dependencies: ["VGGTLTensors", "VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLModels",
                                                   "VGGTLDistributed"],
                path: "Sources/VGGTLBench"),
        // Everything at once (`import VGGTL`), for Swift users, Benchmarks/ and Fuzz/.
        .target(name: "VGGTL", dependencies: ["VGGTLTensors", "VGGTLCPU", "VGGTLOpenCL", "VGGTLBackends", "VGGTLNN",
                                              "VGGTLOptim", "VGGTLData", "VGGTLIO", "VGGTLModels", "VGGTLTrain",
                                              "VGGTLDistributed", "VGGTLBench"],
                path: "Sources/VGGTL"),
        // The commands, as a library: `vggtl` runs them as they are; the test harness
        // `vggtl-faults` runs them with faults put in through `Seams`.
        .target(
            name: "VGGTLCLI",
            // The devices only through VGGTLBackends (never VGGTLCPU or VGGTLOpenCL).
            dependencies: ["VGGTLTensors", "VGGTLBackends", "VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLIO", "VGGTLModels",
                           "VGGTLTrain", "VGGTLDistributed", "VGGTLBench",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/VGGTLCLI"
        ),
        .executableTarget(name: "vggtl", dependencies: ["VGGTLCLI"], path: "Sources/vggtl"),
        // Test-only: vggtl with a failing device, signals, crashes and dying MPI ranks, chosen by
        // its own environment (the tests that need a real process with a fault run it).
        .executableTarget(name: "vggtl-faults", dependencies: ["VGGTLCLI", "VGGTL", "COpenCL"], path: "Tests/FaultHarness"),
        .testTarget(name: "VGGTLTests", dependencies: ["VGGTL", "VGGTLCLI", "vggtl", "vggtl-faults", "CHalf"], path: "Tests/VGGTLTests"),
    ],
    // Swift 6 with complete concurrency checking everywhere but VGGTLCPU (see there).
    swiftLanguageModes: [.v6]
)
