import XCTest
@testable import VGGTL

/// The Swift generator reproduces scripts/reference/weightgen.py bit for bit (the committed
/// fixture was written by make_weightgen_fixture.py with numpy).
final class ReferenceWeightsTests: VGGTLTestCase {
    struct Fixture: Decodable {
        struct Hash: Decodable { var text: String; var hash: String }
        struct Stream: Decodable { var seed: String; var first: [String] }
        struct TensorCase: Decodable {
            var name: String; var shape: [Int]; var scale: Float; var offset: Float; var signed: Bool
            var global_seed: String; var bits: [UInt32]
        }
        struct ScaleCase: Decodable { var shape: [Int]; var layout: String; var gain: Double; var bits: UInt32 }
        struct SketchCase: Decodable {
            var name: String; var norm: Double; var maxabs: Double; var proj: [Double]
            var sample_index: [Int]; var sample_value: [Double]
        }
        var fnv1a64: [Hash]; var streams: [Stream]; var kernel_scales: [ScaleCase]; var tensors: [TensorCase]
        var sketches: [SketchCase]
    }

    func fixture() throws -> Fixture {
        let url = referenceDirectory.appendingPathComponent("fixtures/weightgen_fixture.json")
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    func testHashesAndStreamsMatchPython() throws {
        let f = try fixture()
        XCTAssertEqual(f.fnv1a64.count, 4)
        for h in f.fnv1a64 {
            XCTAssertEqual(String(ReferenceWeights.fnv1a64(h.text), radix: 16).leftPadded(16), h.hash, "fnv1a64(\(h.text))")
        }
        XCTAssertEqual(f.streams.count, 3)
        for s in f.streams {
            let seed = UInt64(s.seed, radix: 16)!
            var g = SeededGenerator(seed: seed)
            let got = (0..<s.first.count).map { _ in String(g.next(), radix: 16).leftPadded(16) }
            XCTAssertEqual(got, s.first, "stream \(s.seed)")
            let direct = (0..<s.first.count).map { String(ReferenceWeights.splitmix(seed, $0), radix: 16).leftPadded(16) }
            XCTAssertEqual(direct, s.first, "ReferenceWeights.splitmix, seed \(s.seed)")
        }
    }

    func testTensorsAreBitIdentical() throws {
        let f = try fixture()
        XCTAssertEqual(f.kernel_scales.count, 4)
        for c in f.kernel_scales {
            XCTAssertEqual(ReferenceWeights.kernelScale(shape: c.shape, layout: c.layout, gain: c.gain).bitPattern, c.bits,
                           "kernel scale \(c.shape) \(c.layout) gain \(c.gain)")
        }
        XCTAssertEqual(f.tensors.count, 10)
        XCTAssertTrue(f.tensors.contains { $0.signed } && f.tensors.contains { $0.offset != 0 })
        for t in f.tensors {
            let v = ReferenceWeights.tensor(name: t.name, shape: t.shape, scale: t.scale, offset: t.offset, signed: t.signed,
                                            globalSeed: UInt64(t.global_seed)!)
            XCTAssertEqual(v.count, t.bits.count, t.name)
            let mismatches = zip(v, t.bits).filter { $0.0.bitPattern != $0.1 }.count
            XCTAssertEqual(mismatches, 0, "\(t.name) (scale \(t.scale), offset \(t.offset), signed \(t.signed)): \(mismatches) of \(v.count) values differ from numpy")
        }
    }

    func testSketchesMatchPython() throws {
        let f = try fixture()
        XCTAssertEqual(f.sketches.count, 2)
        for s in f.sketches {
            let t = try XCTUnwrap(f.tensors.first { $0.name == s.name && $0.global_seed == "0" })
            let values = t.bits.map { Float(bitPattern: $0) }
            let got = ReferenceWeights.sketch(name: s.name, values: values)
            XCTAssertEqual(got.norm, s.norm, accuracy: 1e-12 * s.norm, s.name)
            XCTAssertEqual(got.maxabs, s.maxabs, s.name)
            XCTAssertEqual(got.proj.count, 8)
            for (a, b) in zip(got.proj, s.proj) { XCTAssertEqual(a, b, accuracy: 1e-12 * s.norm, "\(s.name) projection") }
            XCTAssertEqual(got.sampleIndex, s.sample_index, s.name)
            XCTAssertEqual(got.sampleValue, s.sample_value, s.name)
        }
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
