import XCTest
import Foundation
import VGGTL

/// Issue 20: `compare` and `demo` report each method's last epoch and the epoch restored by a
/// selection split of training images (never the test images), with BatchNorm recalibrated,
/// and name the machine.
final class TransferSelectionTests: BinaryTestCase {
    func testTheRestoredEpochHasTheLowestValidationLossAndTiesGoToTheEarliest() {
        XCTAssertEqual(bestEpoch(validationLosses: [0.9, 0.4, 0.6]), 2)
        XCTAssertEqual(bestEpoch(validationLosses: [0.5, 0.3, 0.3, 0.4]), 2, "a tie keeps the earlier epoch")
        XCTAssertEqual(bestEpoch(validationLosses: [0.2, 0.2]), 1)
        XCTAssertEqual(bestEpoch(validationLosses: [.nan, 0.7, .nan, 0.8]), 2, "an epoch without a loss is never chosen")
        XCTAssertEqual(bestEpoch(validationLosses: [.infinity, 3]), 2)
        XCTAssertNil(bestEpoch(validationLosses: []))
        XCTAssertNil(bestEpoch(validationLosses: [.nan]))
    }

    /// The history CSV's val_loss column of a run (the selection split's).
    func selectionLosses(_ file: String) throws -> [Double] {
        try String(contentsOf: url(file), encoding: .utf8).split(separator: "\n").dropFirst().map { row in
            try XCTUnwrap(Double(row.split(separator: ",", omittingEmptySubsequences: false)[3]), String(row))
        }
    }

    func compare(_ out: String, device: String = "cpu", extra: [String] = []) -> [String] {
        ["compare", "--device", device, "--model", "vgg16-bn", "--weights", "none", "--data", path("train"), "--val", path("test"),
         "--size", "32x32", "--seeds", "1", "--head-epochs", "3", "--finetune-epochs", "2", "--scratch-epochs", "3", "--hidden", "8",
         "--batch", "4", "--seed", "3", "--out", path(out)] + extra
    }

    func testCompareRestoresTheEpochChosenByTrainingImagesHeldOut() throws {
        try assertCompareRestoresTheEpochChosenByTrainingImagesHeldOut(device: "cpu")
    }

    func testCompareRestoresTheEpochChosenByTrainingImagesHeldOutOnPoCL() throws {
        guard let pocl = OpenCLDevice.enumerate().first(where: { $0.type == .cpu }) else { throw XCTSkip("no OpenCL CPU device (PoCL)") }
        try assertCompareRestoresTheEpochChosenByTrainingImagesHeldOut(device: "opencl:\(pocl.index)")
    }

    func assertCompareRestoresTheEpochChosenByTrainingImagesHeldOut(device: String) throws {
        _ = try writeImages("train", perClass: 6)
        _ = try writeImages("test", perClass: 2)
        let r = try run(compare("cmp", device: device))
        XCTAssertEqual(r.status, 0, r.output)
        // 0.2 of 6 images per class rounds to one: 5 per class train, 1 chooses.
        XCTAssertTrue(r.output.contains("training on 10 images of 2 classes"), r.output)
        XCTAssertTrue(r.output.contains("2 training images held out to choose the restored epoch"), r.output)
        XCTAssertTrue(r.output.contains("BatchNorm statistics recalibrated over 3 training batches"), "(c) trains its BatchNorm statistics\n\(r.output)")
        let results = try String(contentsOf: url("cmp/results.md"), encoding: .utf8)
        for needle in ["final accuracy (last epoch)", "restored epoch's accuracy", "epoch restored", "Per seed (final accuracy)",
                       "Per seed (restored epoch's accuracy)", "selection split of 2 training images held out from training (never the test images",
                       "BatchNorm recalibrated at each epoch's end", "Machine: CPU", "OpenBLAS", "OPENBLAS_CORETYPE"] {
            XCTAssertTrue(results.contains(needle), "results.md lacks \(needle):\n\(results)")
        }
        // Each method's restored epoch is the one with the lowest loss on the selection split.
        let perSeed = try XCTUnwrap(results.components(separatedBy: "Per seed (restored epoch's accuracy): ").last?.split(separator: "\n").first)
        let methods = [("(a)", "a-bottleneck-features-head"), ("(b)", "b-fine-tune-block5-head"), ("(c)", "c-same-network-from-scratch")]
        for (tag, slug) in methods {
            let part = try XCTUnwrap(perSeed.components(separatedBy: "; ").first { $0.hasPrefix(tag) }, String(perSeed))
            let epoch = try XCTUnwrap(Int(XCTUnwrap(part.components(separatedBy: "(epoch ").last?.dropLast())), part)
            let losses = try selectionLosses("cmp/\(slug)-seed-3.csv")
            XCTAssertEqual(losses[epoch - 1], losses.min()!, "\(tag) restored epoch \(epoch) of \(losses)")
            XCTAssertTrue(r.output.contains("restored epoch \(epoch) (lowest selection loss"), r.output)
        }
    }

    func testCompareOptsOutOfBoth() throws {
        _ = try writeImages("train", perClass: 6)
        _ = try writeImages("test", perClass: 2)
        let r = try run(compare("cmp", extra: ["--no-restore-best", "--no-bn-recalibrate"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("training on 10 images of 2 classes"), "the same training images either way\n\(r.output)")
        XCTAssertFalse(r.output.contains("recalibrated over"), r.output)
        XCTAssertFalse(r.output.contains("lowest selection loss"), "no epoch is restored\n\(r.output)")
        let results = try String(contentsOf: url("cmp/results.md"), encoding: .utf8)
        XCTAssertFalse(results.contains("restored epoch's accuracy"), results)
        XCTAssertTrue(results.contains("BatchNorm not recalibrated"), results)
        XCTAssertTrue(results.contains("final accuracy (last epoch)"), results)
        assertCleanError(try run(compare("bad", extra: ["--select-split", "1.5"])), ["--select-split", "(0, 1)"])
    }

    func testDemoChoosesByTrainingImagesAndNamesTheMachine() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else { throw XCTSkip("no Fashion-MNIST") }
        let r = try run(["demo", "--device", "cpu", "--out", path("demo"), "--source-images", "20", "--source-epochs", "1", "--per-class", "2",
                         "--select-per-class", "3", "--seeds", "2", "--head-epochs", "2", "--finetune-epochs", "1", "--scratch-epochs", "2",
                         "--val-per-class", "2", "--test-per-class", "4", "--batch", "8"], env: ["OPENBLAS_CORETYPE": "Haswell"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("15 other training images (3 per class) choose the restored epoch"), r.output)
        XCTAssertTrue(r.output.contains("selection split (15 training images)"), r.output)
        let results = try String(contentsOf: url("demo/results.md"), encoding: .utf8)
        for needle in ["final accuracy (last epoch)", "restored epoch's accuracy", "Per seed (restored epoch's accuracy)",
                       "the next 3 training images per class of Fashion-MNIST as the selection split", "never the test images",
                       "BatchNorm recalibrated", "Machine: CPU", "OpenBLAS Haswell kernels", "OPENBLAS_CORETYPE=Haswell"] {
            XCTAssertTrue(results.contains(needle), "results.md lacks \(needle):\n\(results)")
        }
        // Two seeds per method: two restored values each.
        let perSeed = try XCTUnwrap(results.components(separatedBy: "Per seed (restored epoch's accuracy): ").last?.split(separator: "\n").first)
        XCTAssertEqual(perSeed.components(separatedBy: "(epoch ").count, 7, String(perSeed))
    }
}
