import XCTest
import Foundation

/// The rooms' layering (DESIGN.md; README's Layout). Package.swift makes a target's dependencies
/// point down, but SwiftPM lets a file import any module already built, declared or not; so this
/// reads every target's imports and checks them against the graph.
final class LayeringTests: XCTestCase {
    /// The engine's targets that each target may import (its dependencies in Package.swift).
    static let allowed: [String: Set<String>] = {
        let tensors: Set<String> = ["VGGTLTensors"]
        let below: [String: Set<String>] = [
            "VGGTLTensors": [],
            "VGGTLCPU": tensors,
            "VGGTLOpenCL": tensors,
            "VGGTLBackends": tensors.union(["VGGTLCPU", "VGGTLOpenCL"]),
            "VGGTLNN": tensors,
            "VGGTLOptim": tensors.union(["VGGTLNN"]),
            "VGGTLData": tensors,
            "VGGTLIO": tensors,
            "VGGTLModels": tensors.union(["VGGTLNN", "VGGTLIO", "VGGTLData"]),
            "VGGTLTrain": tensors.union(["VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLIO", "VGGTLModels"]),
            "VGGTLDistributed": tensors.union(["VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLModels", "VGGTLTrain"]),
            "VGGTLBench": tensors.union(["VGGTLNN", "VGGTLOptim", "VGGTLData", "VGGTLModels", "VGGTLDistributed"]),
        ]
        var all = below
        // The umbrella re-exports everything; the CLI takes everything but the concrete devices.
        all["VGGTL"] = Set(below.keys)
        all["VGGTLCLI"] = Set(below.keys).subtracting(["VGGTLCPU", "VGGTLOpenCL"])
        return all
    }()

    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    /// The Swift files under Sources/<target>.
    func files(of target: String) throws -> [URL] {
        let dir = Self.sources.appendingPathComponent(target)
        guard let walk = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        return walk.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
    }

    func testEachTargetImportsOnlyTheRoomsBelowIt() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).filter { $0.hasPrefix("VGGTL") }
        XCTAssertEqual(Set(folders), Set(Self.allowed.keys), "a target folder the graph does not know, or one that went away")
        for (target, allowed) in Self.allowed {
            for file in try files(of: target) {
                let text = try String(contentsOf: file, encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    guard let i = words.firstIndex(of: "import"), i + 1 < words.count, words[..<i].allSatisfy({ $0.hasPrefix("@") }) else { continue }
                    let module = String(words[i + 1])
                    guard module.hasPrefix("VGGTL") else { continue }
                    XCTAssertTrue(allowed.contains(module), "\(target)/\(file.lastPathComponent) imports \(module)")
                }
            }
        }
    }

    /// Nothing above the device targets names a concrete device: it opens one through
    /// VGGTLBackends and uses the `Device` protocol.
    func testNothingAboveTheDevicesNamesAConcreteDevice() throws {
        let concrete = try NSRegularExpression(pattern: #"\b(CPUDevice|OpenCLDevice)\b"#)
        for target in Self.allowed.keys where !["VGGTLCPU", "VGGTLOpenCL", "VGGTLBackends"].contains(target) {
            for file in try files(of: target) {
                let text = try String(contentsOf: file, encoding: .utf8)
                let hits = concrete.matches(in: text, range: NSRange(text.startIndex..., in: text))
                XCTAssertTrue(hits.isEmpty, "\(target)/\(file.lastPathComponent) names \(hits.map { (text as NSString).substring(with: $0.range) })")
            }
        }
    }
}
