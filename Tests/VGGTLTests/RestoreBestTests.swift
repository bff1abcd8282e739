import XCTest
import Foundation
import VGGTL

/// Issue 20, `--restore-best` (Keras' restore_best_weights): the run ends with the weights of
/// its best epoch by val_loss, taken from best.json, and measures val_loss with them.
final class RestoreBestTests: BinaryTestCase {
    /// Validation rows are the training rows with the other label, so val_loss grows as the
    /// head learns: the best epoch is the first, not the last.
    func testTheRunEndsWithTheBestEpochsWeights() throws {
        try assertTheRunEndsWithTheBestEpochsWeights(device: "cpu")
    }

    /// The same on PoCL, the OpenCL device CI has.
    func testTheRunEndsWithTheBestEpochsWeightsOnOpenCL() throws {
        guard let pocl = OpenCLDevice.enumerate().first(where: { $0.type == .cpu }) else { throw XCTSkip("no OpenCL CPU device (PoCL)") }
        try assertTheRunEndsWithTheBestEpochsWeights(device: "opencl:\(pocl.index)")
    }

    private func assertTheRunEndsWithTheBestEpochsWeights(device: String) throws {
        _ = try writeFeatures("feat")
        _ = try writeFeatures("val")
        let labels = try NPY.read(url("val/labels.npy"))
        try NPY.writeInt64(labels.values.map { 1 - Int($0) }, shape: [labels.values.count], to: url("val/labels.npy"))
        let r = try run(["train-top", "--features", path("feat"), "--val-features", path("val"), "--out", path("run"), "--epochs", "3",
                         "--restore-best"] + headFlags + ["--device", device])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("device: \(device)"), "ran on \(device): \(r.output)")
        let history = try Checkpoint.load(url("run/last.json")).history.records.compactMap(\.valLoss)
        XCTAssertEqual(history.count, 3)
        XCTAssertEqual(history.firstIndex(of: history.min()!), 0, "the first epoch is the best: \(history)")
        XCTAssertGreaterThan(history[2] - history[0], 1e-3, "the last epoch's weights would give another val_loss")
        guard let line = r.output.split(separator: "\n").first(where: { $0.hasPrefix("restored the best weights: epoch 1 ") }) else {
            return XCTFail(r.output)
        }
        // "... (val_loss X) ... now Y": the model now gives the best epoch's val_loss.
        let numbers = line.split(whereSeparator: { " ()".contains($0) }).compactMap { Double($0) }
        XCTAssertEqual(numbers.count, 3, String(line))
        XCTAssertEqual(numbers[1], history[0], accuracy: 1e-4, String(line))
        XCTAssertEqual(numbers[2], numbers[1], accuracy: 1e-4, String(line))
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 3, "last.json stays the last epoch's")
    }

    func testRestoreBestWithoutValidationIsAOneLineError() throws {
        _ = try writeFeatures("feat")
        assertCleanError(try run(["train-top", "--features", path("feat"), "--out", path("run"), "--epochs", "1", "--restore-best"] + headFlags),
                         ["--restore-best", "validation", "--val-split"])
    }
}
