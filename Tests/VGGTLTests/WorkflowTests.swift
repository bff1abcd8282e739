import XCTest
import Foundation
import VGGTL

/// The README's ResNet50 and InceptionV3 workflows through the binary, at small sizes with
/// random "pretrained" weights (a short run of our own, converted to a Keras .h5 file).
final class WorkflowTests: BinaryTestCase {
    func ok(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
    }

    /// A trunk file as a user would have it: a short training run, written by `weights convert`.
    func pretrained(_ model: String, size: String, data: URL) throws -> String {
        ok(try run(["train", "--device", "cpu", "--model", model, "--data", data.path, "--size", size, "--epochs", "1",
                    "--limit", "4", "--batch", "4", "--out", path("\(model)-src")]))
        ok(try run(["weights", "convert", path("\(model)-src"), path("\(model).h5")]))
        return path("\(model).h5")
    }

    /// Keras' ResNet50 tutorial: bottleneck features + a head, then fine-tuning with
    /// `model.layers[:168]` frozen, the head starting from the trained top model.
    func testResNet50FeaturesThenHeadThenFreezeFirst168() throws {
        let train = try writeImages("train", perClass: 4), val = try writeImages("val", perClass: 2)
        let weightsFile = try pretrained("resnet50", size: "32", data: train)
        for (name, dir) in [("train", train), ("val", val)] {
            ok(try run(["extract", "--device", "cpu", "--model", "resnet50", "--weights", weightsFile, "--data", dir.path,
                        "--size", "32", "--out", path("features/\(name)")]))
        }
        let top = try run(["train-top", "--device", "cpu", "--features", path("features/train"), "--val-features", path("features/val"),
                           "--epochs", "2", "--batch", "4", "--hidden", "16", "--out", path("top")])
        ok(top)
        XCTAssertTrue(top.output.contains("resnet50"), "train-top names the features' trunk:\n\(top.output)")
        let cut = try run(["summary", "--model", "resnet50", "--freeze-first", "168", "--size", "32"])
        ok(cut)
        XCTAssertTrue(cut.output.contains("conv5_block3_1_relu"), cut.output)
        let ft = try run(["finetune", "--device", "cpu", "--model", "resnet50", "--weights", weightsFile, "--top-model", path("top"),
                          "--freeze-first", "168", "--data", train.path, "--val", val.path, "--size", "32", "--hidden", "16",
                          "--epochs", "1", "--batch", "4", "--lr", "1e-2", "--out", path("ft")])
        ok(ft)
        XCTAssertTrue(ft.output.contains("head initialised from"), ft.output)
        // Keras' model.layers[168] is conv5_block3_2_conv: it and everything after train, the rest is as loaded.
        let loaded = Dictionary(uniqueKeysWithValues: try WeightFile.load(URL(fileURLWithPath: weightsFile)).tensors.map { ($0.name, $0.values) })
        let tuned = try weights("ft")
        XCTAssertEqual(tuned["conv5_block3_1_conv/kernel"], loaded["conv5_block3_1_conv/kernel"], "layer 165 is frozen")
        XCTAssertEqual(tuned["conv2_block1_1_conv/kernel"], loaded["conv2_block1_1_conv/kernel"], "stage 2 is frozen")
        XCTAssertNotEqual(tuned["conv5_block3_2_conv/kernel"], loaded["conv5_block3_2_conv/kernel"], "layer 168 trains")
        XCTAssertNotEqual(tuned["conv5_block3_3_conv/kernel"], loaded["conv5_block3_3_conv/kernel"], "layer 171 trains")
    }

    /// The InceptionV3 tutorial's comparison: a few images per class, three methods, two seeds.
    func testInceptionV3CompareReportsJumpStartFinalAndTimeToTarget() throws {
        let train = try writeImages("train", perClass: 4, classes: ["cats", "dogs", "birds"])
        let val = try writeImages("val", perClass: 2, classes: ["cats", "dogs", "birds"])
        let weightsFile = try pretrained("inceptionv3", size: "75", data: train)
        let r = try run(["compare", "--device", "cpu", "--model", "inceptionv3", "--weights", weightsFile, "--data", train.path,
                         "--val", val.path, "--per-class", "3", "--seeds", "2", "--head-epochs", "3", "--finetune-epochs", "1",
                         "--scratch-epochs", "1", "--target", "0.5", "--target", "0.9", "--batch", "3", "--hidden", "16", "--out", path("cmp")])
        ok(r)
        XCTAssertTrue(r.output.contains("training on 9 images of 3 classes"), r.output)
        XCTAssertTrue(r.output.contains("preprocessing"), r.output)
        let results = try String(contentsOf: url("cmp/results.md"), encoding: .utf8)
        for needle in ["InceptionV3", "jump start (epoch 1)", "final accuracy", "time to 50%", "time to 90%",
                       "| (a) bottleneck features + head |", "| (b) fine-tune mixed9 + head |", "| (c) same network from scratch |", "Seeds 1, 2"] {
            XCTAssertTrue(results.contains(needle), "results.md lacks \(needle):\n\(results)")
        }
        // One history per method and seed, with each method's epochs and optimizer's rate.
        for (method, epochs, lr) in [("a-bottleneck-features-head", 3, 1e-3), ("b-fine-tune-mixed9-head", 1, 1e-4), ("c-same-network-from-scratch", 1, 1e-3)] {
            for seed in [1, 2] {
                let csv = try String(contentsOf: url("cmp/\(method)-seed-\(seed).csv"), encoding: .utf8).split(separator: "\n").dropFirst()
                XCTAssertEqual(csv.count, epochs, "\(method) seed \(seed): \(csv)")
                for row in csv {
                    let f = row.split(separator: ",", omittingEmptySubsequences: false)
                    XCTAssertEqual(Double(f[5])!, lr, accuracy: lr * 1e-4, "\(method): \(row)")
                    XCTAssertTrue(Double(f[1])!.isFinite, "\(method): \(row)")
                    let acc = Double(f[4])!
                    XCTAssertTrue(acc >= 0 && acc <= 1, "\(method): \(row)")
                }
                XCTAssertTrue(FileManager.default.fileExists(atPath: path("cmp/\(method)-seed-\(seed).svg")))
            }
        }
    }

    func testCompareRefusesWhatCannotWork() throws {
        let train = try writeImages("train", perClass: 2)
        assertCleanError(try run(["compare", "--device", "cpu", "--data", train.path, "--seeds", "0"]), ["--seeds", "at least 1"])
        assertCleanError(try run(["compare", "--device", "cpu", "--data", train.path, "--target", "1.5"]), ["--target", "(0, 1]"])
        assertCleanError(try run(["compare", "--device", "cpu", "--model", "resnet50", "--weights", "none", "--data", train.path,
                                  "--unfreeze", "mixed9", "--out", path("c")]), ["--unfreeze", "mixed9"])
    }
}
