import XCTest
import Foundation
import VGGTL

/// Issue 20, class imbalance: `--class-weight balanced | FILE` (Keras' class_weight with
/// sklearn's n / (k * n_c)), `--sampler balanced`, the checkpoint keeping both on resume, the
/// 10x imbalance warning, and evaluate's balanced accuracy and macro scores.
final class ClassImbalanceTests: BinaryTestCase {
    /// Features with `counts[c]` rows of class c (rows interleaved so batches mix the classes),
    /// each class near its own point: [rows, 1, 1, width].
    func writeImbalancedFeatures(_ name: String, counts: [Int] = [40, 4], classes: [String] = ["cats", "dogs"], width: Int = 6) throws
        -> (path: String, values: [Float], labels: [Int]) {
        let dir = url(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var g = SeededGenerator(seed: 3)
        var labels: [Int] = []
        var left = counts
        while left.contains(where: { $0 > 0 }) {
            for c in left.indices where left[c] > 0 { labels.append(c); left[c] -= 1 }
        }
        var values: [Float] = []
        for c in labels { for j in 0..<width { values.append(g.uniform(-1, 1) * 0.5 + (j % classes.count == c ? 1 : -0.5)) } }
        try NPY.write(values, shape: [labels.count, 1, 1, width], to: dir.appendingPathComponent("features.npy"))
        try NPY.writeInt64(labels, shape: [labels.count], to: dir.appendingPathComponent("labels.npy"))
        try JSONEncoder().encode(classes).write(to: dir.appendingPathComponent("classes.json"))
        return (dir.path, values, labels)
    }

    /// A head with no hidden layer and no dropout trained at a learning rate too small to move
    /// it: the epoch's loss is the loss of the starting weights, which the test recomputes.
    func frozenHeadFlags(_ device: String) -> [String] {
        ["--device", device, "--hidden", "0", "--dropout", "0", "--optimizer", "sgd", "--momentum", "0", "--lr", "1e-30",
         "--batch", "8", "--epochs", "1", "--seed", "5"]
    }

    /// Per-sample binary cross-entropy of the run's head on the features, in float64.
    func perSampleLosses(_ run: String, values: [Float], labels: [Int], width: Int = 6) throws -> [Double] {
        let w = try weights(run)
        let kernel = try XCTUnwrap(w["predictions/kernel"], "weights: \(w.keys.sorted())"), bias = try XCTUnwrap(w["predictions/bias"])
        return labels.enumerated().map { i, y in
            var z = Double(bias[0])
            for j in 0..<width { z += Double(values[i * width + j]) * Double(kernel[j]) }
            return max(z, 0) - z * Double(y) + log1p(exp(-abs(z)))
        }
    }

    /// On a 10:1 dataset, balanced weights are 44 / (2 * 40) = 0.55 and 44 / (2 * 4) = 5.5 and the
    /// loss is the mean of weight * per-sample loss, on the CPU and on PoCL; without weights it is
    /// the plain mean.
    func testBalancedClassWeightsWeighTheLossAsTheFormulaSays() throws {
        let f = try writeImbalancedFeatures("feat")
        for device in ["cpu", "opencl"] {
            let weighted = try run(["train-top", "--features", f.path, "--out", path("w-\(device)"), "--class-weight", "balanced"] + frozenHeadFlags(device))
            XCTAssertEqual(weighted.status, 0, weighted.output)
            XCTAssertTrue(weighted.output.contains("class weights balanced: cats 0.55, dogs 5.5"), weighted.output)
            XCTAssertFalse(weighted.output.contains("imbalanced"), "no warning with --class-weight\n\(weighted.output)")
            let info = try Checkpoint.load(url("w-\(device)/last.json"))
            XCTAssertEqual(info.classWeights, ClassWeights(source: "balanced", values: [Float(44.0 / 80), Float(44.0 / 8)]))
            let losses = try perSampleLosses("w-\(device)", values: f.values, labels: f.labels)
            let expected = zip(losses, f.labels).map { l, y in l * (y == 0 ? 0.55 : 5.5) }.reduce(0, +) / Double(losses.count)
            XCTAssertEqual(info.history.records[0].loss, expected, accuracy: 1e-5 * expected, "\(device): weighted loss")

            let plain = try run(["train-top", "--features", f.path, "--out", path("p-\(device)")] + frozenHeadFlags(device))
            XCTAssertEqual(plain.status, 0, plain.output)
            let plainInfo = try Checkpoint.load(url("p-\(device)/last.json"))
            XCTAssertNil(plainInfo.classWeights)
            let plainLosses = try perSampleLosses("p-\(device)", values: f.values, labels: f.labels)
            let mean = plainLosses.reduce(0, +) / Double(plainLosses.count)
            XCTAssertEqual(plainInfo.history.records[0].loss, mean, accuracy: 1e-5 * mean, "\(device): unweighted loss")
            XCTAssertGreaterThan(abs(expected - mean), 1e-3 * mean, "the weights must change the loss for this test to mean anything")
        }
    }

    /// Training warns once when the classes are more than 10x imbalanced and neither flag is
    /// given, naming both; 10:1 exactly, or either flag, and it says nothing.
    func testMoreThanTenfoldImbalanceWarnsOnceNamingBothFlags() throws {
        let skewed = try writeImbalancedFeatures("skewed", counts: [45, 4]), even = try writeImbalancedFeatures("even", counts: [40, 4])
        let plain = try run(["train-top", "--features", skewed.path, "--out", path("plain")] + frozenHeadFlags("cpu"))
        XCTAssertEqual(plain.status, 0, plain.output)
        let warnings = plain.output.split(separator: "\n").filter { $0.contains("imbalanced") }
        XCTAssertEqual(warnings.count, 1, plain.output)
        XCTAssertTrue(warnings.first.map { $0.hasPrefix("warning: ") && $0.contains("11x") && $0.contains("cats: 45") && $0.contains("dogs: 4")
                                              && $0.contains("--class-weight balanced") && $0.contains("--sampler balanced") } ?? false, plain.output)
        for (name, extra, features) in [("tenfold", [String](), even.path), ("sampled", ["--sampler", "balanced"], skewed.path),
                                        ("weighted", ["--class-weight", "balanced"], skewed.path)] {
            let r = try run(["train-top", "--features", features, "--out", path(name)] + frozenHeadFlags("cpu") + extra)
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertFalse(r.output.contains("imbalanced"), "\(name)\n\(r.output)")
        }
    }

    /// A weights file gives each class its weight; unknown or missing classes and bad values are
    /// one-line errors naming the flag and the file.
    func testClassWeightFileAndItsErrors() throws {
        let f = try writeImbalancedFeatures("feat")
        func file(_ name: String, _ text: String) throws -> String {
            try text.write(to: url(name), atomically: true, encoding: .utf8)
            return path(name)
        }
        let good = try file("good.json", #"{"dogs": 3, "cats": 1}"#)
        let ok = try run(["train-top", "--features", f.path, "--out", path("run"), "--class-weight", good] + frozenHeadFlags("cpu"))
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).classWeights, ClassWeights(source: good, values: [1, 3]))
        let cases: [(String, String, [String])] = [
            ("unknown.json", #"{"cats": 1, "dogs": 2, "birds": 4}"#, ["unknown class", "birds", "cats, dogs"]),
            ("missing.json", #"{"cats": 1}"#, ["no weight for class", "dogs"]),
            ("negative.json", #"{"cats": 1, "dogs": -2}"#, ["dogs", ">= 0"]),
            ("list.json", "[1, 2]", ["JSON object"]),
        ]
        for (name, text, needles) in cases {
            let bad = try file(name, text)
            assertCleanError(try run(["train-top", "--features", f.path, "--out", path("bad-\(name)"), "--class-weight", bad] + frozenHeadFlags("cpu")),
                             ["--class-weight", bad] + needles)
        }
        assertCleanError(try run(["train-top", "--features", f.path, "--out", path("none"), "--class-weight", path("absent.json")] + frozenHeadFlags("cpu")),
                         ["--class-weight", path("absent.json"), "cannot read"])
        // A class without training samples has no balanced weight.
        try JSONEncoder().encode(["cats", "dogs", "birds"]).write(to: url("feat/classes.json"))
        assertCleanError(try run(["train-top", "--features", f.path, "--out", path("empty"), "--class-weight", "balanced"] + frozenHeadFlags("cpu")),
                         ["--class-weight balanced", "'birds' has no training samples"])
    }

    /// The balanced sampler draws both classes of a 10:1 dataset equally often in every epoch,
    /// and a run interrupted mid-epoch and resumed trains on exactly the batches of an
    /// uninterrupted one. Resuming with another sampler or other class weights is refused.
    func testBalancedSamplerDrawsClassesEquallyAndResumesIdentically() throws {
        let f = try writeImbalancedFeatures("feat")
        let common = ["train-top", "--features", f.path, "--device", "cpu", "--hidden", "8", "--batch", "4", "--epochs", "3",
                      "--seed", "9", "--sampler", "balanced", "--class-weight", "balanced"]
        let full = try run(common + ["--out", path("full")], env: ["VGGTL_TEST_SAMPLE_LOG": path("full.log")], binary: faultHarnessBinary)
        XCTAssertEqual(full.status, 0, full.output)
        XCTAssertFalse(full.output.contains("imbalanced"), full.output)
        let drawn = try String(contentsOf: url("full.log"), encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ").map { Int($0)! } }
        XCTAssertEqual(drawn.count, 3 * 44, "as many draws per epoch as samples")
        for epoch in 0..<3 {
            let labels = drawn.filter { $0[0] == epoch }.map { f.labels[$0[1]] }
            XCTAssertEqual(labels.filter { $0 == 0 }.count, 22, "epoch \(epoch): cats drawn")
            XCTAssertEqual(labels.filter { $0 == 1 }.count, 22, "epoch \(epoch): dogs drawn")
        }
        // Epoch 2, batch 3 of 11: cut, then resumed into the same log.
        let cut = try run(common + ["--out", path("cut")], env: ["VGGTL_TEST_SAMPLE_LOG": path("cut.log"), "VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "14"],
                          binary: faultHarnessBinary)
        XCTAssertEqual(cut.status, 130, cut.output)
        let resumed = try run(common + ["--out", path("cut"), "--resume"], env: ["VGGTL_TEST_SAMPLE_LOG": path("cut.log")], binary: faultHarnessBinary)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try String(contentsOf: url("cut.log"), encoding: .utf8), try String(contentsOf: url("full.log"), encoding: .utf8),
                       "the resumed run draws the batches of the uninterrupted one")
        XCTAssertEqual(try Checkpoint.load(url("cut/last.json")).sampler, "balanced")

        let base = ["train-top", "--features", f.path, "--device", "cpu", "--hidden", "8", "--batch", "4", "--seed", "9", "--out", path("full"), "--epochs", "4", "--resume"]
        assertCleanError(try run(base + ["--class-weight", "balanced"]), ["--resume", "--sampler", "balanced", "shuffle"])
        assertCleanError(try run(base + ["--sampler", "balanced"]), ["--resume", "--class-weight", "balanced", "none"])
    }

    /// Both flags through fine-tuning on images, on the CPU and on PoCL; `train` takes them too;
    /// evaluate prints balanced accuracy and macro precision/recall/F1 (text and JSON) and warns
    /// about a 10x imbalanced test set when the model was trained without either flag.
    func testImageCommandsTakeTheFlagsAndEvaluateReportsBalancedScores() throws {
        // 22 cats, 2 dogs: 11x.
        let data = try writeImages("data", perClass: 22)
        for i in 2..<22 { try FileManager.default.removeItem(at: url(String(format: "data/dogs/img%02d.jpg", i))) }
        let common = ["finetune", "--weights", "none", "--data", data.path, "--size", "32x32", "--batch", "4", "--hidden", "8", "--epochs", "1"]
        for device in ["cpu", "opencl"] {
            let r = try run(common + ["--device", device, "--out", path("ft-\(device)"), "--class-weight", "balanced", "--sampler", "balanced"])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("class weights balanced: cats 0.5455, dogs 6"), r.output)
            let info = try Checkpoint.load(url("ft-\(device)/last.json"))
            XCTAssertEqual(info.sampler, "balanced")
            XCTAssertEqual(info.classWeights?.values, [Float(24.0 / 44), Float(24.0 / 4)])
        }
        let trained = try run(["train", "--device", "cpu", "--data", data.path, "--batch", "8", "--hidden", "8", "--epochs", "1",
                               "--out", path("scratch"), "--sampler", "balanced", "--class-weight", "balanced"])
        XCTAssertEqual(trained.status, 0, trained.output)
        XCTAssertEqual(try Checkpoint.load(url("scratch/last.json")).sampler, "balanced")

        let plain = try run(common + ["--device", "cpu", "--out", path("plain")])
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertTrue(plain.output.contains("11x imbalanced"), plain.output)

        let text = try run(["evaluate", "--device", "cpu", "--model", path("plain"), "--data", data.path])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("balanced accuracy: ") && text.output.contains("macro F1: "), text.output)
        XCTAssertEqual(text.output.split(separator: "\n").filter { $0.contains("imbalanced") && $0.contains("--class-weight") && $0.contains("--sampler") }.count, 1, text.output)
        let weighted = try run(["evaluate", "--device", "cpu", "--model", path("ft-cpu"), "--data", data.path])
        XCTAssertFalse(weighted.output.contains("imbalanced"), "trained with the flags: no warning\n\(weighted.output)")

        let json = try run(["evaluate", "--device", "cpu", "--model", path("plain"), "--data", data.path, "--json"])
        XCTAssertEqual(json.status, 0, json.output)
        let body = String(json.output[json.output.firstIndex(of: "{")!...])
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let confusion = try XCTUnwrap(object["confusion"] as? [[Int]])
        let recalls = confusion.indices.map { Double(confusion[$0][$0]) / Double(confusion[$0].reduce(0, +)) }
        XCTAssertEqual(try XCTUnwrap(object["balancedAccuracy"] as? Double), recalls.reduce(0, +) / 2, accuracy: 1e-12)
        for key in ["macroPrecision", "macroRecall", "macroF1"] { XCTAssertNotNil(object[key] as? Double, "\(key) in \(body)") }
        XCTAssertNotNil((object["classes"] as? [[String: Any]])?.first?["f1"] as? Double, body)
    }

    /// sklearn's values for a small 3-class case: balanced_accuracy_score, and precision, recall
    /// and F1 with average="macro", zero_division=0.
    func testReportMatchesSklearnsBalancedAndMacroScores() {
        let r = ClassificationReport(classNames: ["a", "b", "c"], truth: [0, 0, 0, 0, 0, 1, 1, 2], predicted: [0, 0, 0, 0, 1, 1, 0, 0])
        XCTAssertEqual(r.balancedAccuracy, (0.8 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.macroPrecision, (4.0 / 6 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.macroRecall, (0.8 + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.macroF1, (2 * (2.0 / 3) * 0.8 / (2.0 / 3 + 0.8) + 0.5 + 0) / 3, accuracy: 1e-12)
        XCTAssertTrue(r.text.contains("balanced accuracy: 0.4333"), r.text)
    }

    /// The balanced order: equal class counts (to within one), a small class's images repeated
    /// evenly, the same order for the same (seed, epoch), another for another epoch.
    func testBalancedOrderDrawsEquallyAndDependsOnlyOnSeedAndEpoch() {
        let labels = (0..<33).map { $0 < 30 ? 0 : 1 }
        let order = balancedOrder(labels: labels, seed: 4, epoch: 2)
        XCTAssertEqual(order.count, 33)
        let ones = order.filter { labels[$0] == 1 }
        XCTAssertTrue([16, 17].contains(ones.count), "\(ones.count) draws of the small class")
        for i in 30..<33 { XCTAssertTrue((5...6).contains(ones.filter { $0 == i }.count), "image \(i) drawn \(ones.filter { $0 == i }.count) times") }
        XCTAssertEqual(Set(order.filter { labels[$0] == 0 }).count, order.count - ones.count, "the large class is subsampled without repeats")
        XCTAssertEqual(order, balancedOrder(labels: labels, seed: 4, epoch: 2))
        XCTAssertNotEqual(order, balancedOrder(labels: labels, seed: 4, epoch: 3))
    }

    /// Issue 20's two features together: with --accumulate each batch's weighted per-sample
    /// losses are summed and the step divides by all its samples, so the epoch's loss is the
    /// weighted formula and batch 4 x 4 ends with the weights of weighted batch 16.
    func testClassWeightsHoldInAccumulatedSteps() throws {
        let f = try writeImbalancedFeatures("feat")
        let frozen = try run(["train-top", "--features", f.path, "--out", path("frozen"), "--class-weight", "balanced", "--accumulate", "2"]
                             + frozenHeadFlags("cpu"))
        XCTAssertEqual(frozen.status, 0, frozen.output)
        let info = try Checkpoint.load(url("frozen/last.json"))
        XCTAssertEqual(info.accumulate, 2)
        XCTAssertEqual(info.classWeights?.source, "balanced")
        let losses = try perSampleLosses("frozen", values: f.values, labels: f.labels)
        let expected = zip(losses, f.labels).map { l, y in l * (y == 0 ? 0.55 : 5.5) }.reduce(0, +) / Double(losses.count)
        XCTAssertEqual(info.history.records[0].loss, expected, accuracy: 1e-5 * expected, "weighted loss with --accumulate 2")

        func train(_ name: String, batch: String, _ extra: [String]) throws -> [String: [Float]] {
            let r = try run(["train-top", "--features", f.path, "--out", path(name), "--device", "cpu", "--hidden", "8", "--dropout", "0",
                             "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05", "--epochs", "2", "--seed", "5", "--batch", batch] + extra)
            XCTAssertEqual(r.status, 0, r.output)
            return try weights(name)
        }
        let accumulated = try train("acc", batch: "4", ["--class-weight", "balanced", "--accumulate", "4"])
        let big = try train("big", batch: "16", ["--class-weight", "balanced"])
        let unweighted = try train("plain", batch: "16", [])
        func largest(_ a: [String: [Float]], _ b: [String: [Float]]) -> Float {
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            return a.map { name, x in
                let y = b[name] ?? [], scale = max(y.map(abs).max() ?? 0, 1e-3)
                return (zip(x, y).map { abs($0 - $1) }.max() ?? .infinity) / scale
            }.max() ?? .infinity
        }
        XCTAssertLessThan(largest(accumulated, big), 1e-5, "weighted batch 4 x 4 against weighted batch 16")
        XCTAssertGreaterThan(largest(big, unweighted), 1e-3, "the weights change the steps")
    }
}
