import XCTest
@testable import VGGTL

/// The committed reference dumps are complete and readable, and the Swift sketches agree with
/// Python's: what the model tests (which compare our ResNet50/InceptionV3 with the dumps) stand on.
final class ReferenceDumpTests: VGGTLTestCase {
    func dump(_ variant: String) throws -> ReferenceDump {
        let url = ReferenceDumps.url(variant)
        XCTAssertTrue(FileManager.default.fileExists(atPath: url.path),
                      "\(url.path) is missing: run scripts/reference/torch_reference.py")
        return try ReferenceDump(url)
    }

    /// Keras' own weight list (model.layers order, trainable then non-trainable), from
    /// scripts/reference/keras/<model>_notop.layers.json.
    func kerasWeights(_ model: String) throws -> (names: [String], shapes: [[Int]], total: Int) {
        struct W: Decodable { var name: String; var shape: [Int] }
        struct L: Decodable { var trainable_weights: [W]; var non_trainable_weights: [W] }
        struct M: Decodable { var total_params: Int; var layers: [L] }
        let m = try JSONDecoder().decode(M.self, from: Data(contentsOf: referenceDirectory.appendingPathComponent("keras/\(model)_notop.layers.json")))
        let ws = m.layers.flatMap { $0.trainable_weights + $0.non_trainable_weights }
        return (ws.map { String($0.name.split(separator: ":")[0]) }, ws.map(\.shape), m.total_params)
    }

    func testDumpsDescribeEveryTensor() throws {
        for variant in ReferenceDumps.variants {
            let d = try dump(variant)
            let shape = d.inputShape
            XCTAssertEqual(shape.count, 4, variant)
            let input = try d.array("input")
            XCTAssertEqual(input.shape, shape, variant)
            let generated = ReferenceWeights.tensor(name: "input", shape: shape, scale: 1, globalSeed: d.globalSeed)
            XCTAssertEqual(input.values.map(\.bitPattern), generated.map(\.bitPattern), "\(variant): the input is the generator's")
            XCTAssertEqual(try d.array("labels").values.count, shape[0], variant)
            XCTAssertEqual(try d.array("inference/logits").shape, [shape[0], d.classes], variant)
            XCTAssertEqual(try d.array("train/loss").values.count, 1, variant)

            let trunk = d.tensors.filter { !$0.name.hasPrefix("head_dense/") }
            XCTAssertEqual(d.tensors.suffix(2).map(\.name), ["head_dense/kernel", "head_dense/bias"], variant)
            if variant.hasPrefix("keras_") {
                let k = try kerasWeights(String(variant.dropFirst("keras_".count)))
                XCTAssertEqual(trunk.map(\.name), k.names, "\(variant): tensors in Keras' weight order")
                XCTAssertEqual(trunk.map(\.shape), k.shapes, variant)
                XCTAssertEqual(trunk.reduce(0) { $0 + $1.shape.reduce(1, *) }, k.total, "\(variant): Keras' parameter count")
            }
            for t in d.tensors {
                if t.stored == true {
                    XCTAssertEqual(try d.array("weights/\(t.name)").shape, t.shape, "\(variant) \(t.name)")
                } else {
                    XCTAssertNotNil(t.scale, "\(variant) \(t.name): no scale")
                }
            }
            // Two tensors through the generator, to be sure the specs decode (all of them would take long in debug).
            for t in [trunk[0], d.tensors[d.tensors.count - 2]] {
                let v = try d.weight(t)
                XCTAssertEqual(v.count, t.shape.reduce(1, *), "\(variant) \(t.name)")
                XCTAssertTrue(v.contains { $0 != 0 }, "\(variant) \(t.name)")
            }
            for step in ["train", "frozen"] {
                XCTAssertEqual(Set(d.trainable(step: step).map(\.name)), Set(d.sketches[step]?.keys.map { $0 } ?? []),
                               "\(variant) \(step): a sketch for every trainable tensor")
            }
        }
    }

    /// A gradient stored in full, sketched by Swift, matches the sketch Python made of the
    /// float64 gradient (up to the float32 rounding of the stored copy): the reader, the sign
    /// streams and the comparator agree with weightgen.py.
    func testSketchesOfStoredGradientsMatchPython() throws {
        for variant in ReferenceDumps.variants {
            let d = try dump(variant)
            var c = ReferenceComparator(d)
            var zeros = 0
            for step in ["train", "frozen"] {
                for (name, s) in d.sketches[step] ?? [:] where d.has("\(step)/grad/\(name)") {
                    if s.expected_zero == true { zeros += 1; continue }
                    c.compareGradient(step: step, name: name, ours: try d.array("\(step)/grad/\(name)").values, tolerance: 1e-6,
                                      sensitiveTolerance: 1e-6)
                }
            }
            XCTAssertGreaterThan(c.rows.count, 50, variant)
            c.assertAll()
            // And a wrong gradient is caught: the first stored one, scaled by 1.001.
            let (step, name) = try XCTUnwrap(["train", "frozen"].lazy.compactMap { st in
                d.sketches[st]?.first { d.has("\(st)/grad/\($0.key)") && $0.value.expected_zero != true && $0.value.routing_sensitive != true }
                    .map { (st, $0.key) } }.first)
            var wrong = ReferenceComparator(d)
            wrong.compareGradient(step: step, name: name, ours: try d.array("\(step)/grad/\(name)").values.map { $0 * 1.001 }, tolerance: 1e-4)
            XCTAssertEqual(wrong.failures.count, 1, "\(variant): a 0.1% error must fail at 1e-4")
        }
    }
}
