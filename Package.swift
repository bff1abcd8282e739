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
        .target(
            name: "VGGTL",
            dependencies: ["COpenCL", "CCLBlast", "CJPEG", "CPNG", "CHDF5", "CZlib", "CImageSupport", "CHalf"],
            path: "Sources/VGGTL",
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("m")],
            plugins: ["EmbedKernels"]
        ),
        // The commands, as a library: `vggtl` runs them as they are; the test harness
        // `vggtl-faults` runs them with faults put in through `Seams`.
        .target(
            name: "VGGTLCLI",
            dependencies: ["VGGTL", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/VGGTLCLI"
        ),
        .executableTarget(name: "vggtl", dependencies: ["VGGTLCLI"], path: "Sources/vggtl"),
        // Test-only: vggtl with a failing device, signals, crashes and dying MPI ranks, chosen by
        // its own environment (the tests that need a real process with a fault run it).
        .executableTarget(name: "vggtl-faults", dependencies: ["VGGTLCLI", "VGGTL", "COpenCL"], path: "Tests/FaultHarness"),
        .testTarget(name: "VGGTLTests", dependencies: ["VGGTL", "VGGTLCLI", "vggtl", "vggtl-faults", "CHalf"], path: "Tests/VGGTLTests"),
    ],
    swiftLanguageModes: [.v5]
)
