// swift-tools-version:6.1
// libFuzzer harness for the file readers (JPEG, PNG, HDF5, safetensors, npy, IDX, CIFAR-10).
// A separate package so the engine's build and tests never compile it. Run: Fuzz/run.sh [seconds]
import PackageDescription
import Foundation

// SwiftPM names a path dependency after its folder, which differs between checkouts.
let engine = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "vggtl-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(path: "..")],
    targets: [
        .executableTarget(
            name: "vggtl-fuzz",
            dependencies: [.product(name: "VGGTL", package: engine)],
            path: "Sources/vggtl-fuzz",
            // run.sh instruments everything (-sanitize=address and libFuzzer's coverage) and links
            // libFuzzer without its main(): the entry point below calls LLVMFuzzerRunDriver.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])],
            linkerSettings: [.linkedLibrary("stdc++")]
        ),
    ],
    swiftLanguageModes: [.v5]
)
