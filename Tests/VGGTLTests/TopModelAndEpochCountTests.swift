import XCTest
import Foundation
import VGGTL

/// Issue 22, items 7 and 9: the epoch counter of compare and demo counts to the method's total;
/// `finetune --top-model` builds the head the top model has.
final class TopModelAndEpochCountTests: BinaryTestCase {
    /// "Epoch k/N" lines of a run's output.
    func epochLines(_ output: String) -> [String] {
        output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init).filter { $0.hasPrefix("Epoch ") }
    }

    func testCompareCountsEpochsToTheMethodsTotal() throws {
        let data = try writeImages("data", perClass: 3)
        let r = try run(["compare", "--device", "cpu", "--weights", "none", "--data", data.path, "--size", "32x32", "--seeds", "1",
                         "--head-epochs", "3", "--finetune-epochs", "2", "--scratch-epochs", "2", "--hidden", "8", "--batch", "4",
                         "--out", path("compare")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(epochLines(r.output), ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3", "Epoch 1/2", "Epoch 2/2", "Epoch 1/2", "Epoch 2/2"], r.output)
    }

    func testDemoCountsEpochsToTheMethodsTotal() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else { throw XCTSkip("no Fashion-MNIST") }
        let r = try run(["demo", "--device", "cpu", "--out", path("demo"), "--source-images", "20", "--source-epochs", "2", "--per-class", "2",
                         "--seeds", "1", "--head-epochs", "3", "--finetune-epochs", "2", "--scratch-epochs", "1", "--val-per-class", "2",
                         "--test-per-class", "4", "--batch", "8"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(epochLines(r.output), ["Epoch 1/2", "Epoch 2/2", "Epoch 1/3", "Epoch 2/3", "Epoch 3/3", "Epoch 1/2", "Epoch 2/2", "Epoch 1/1"], r.output)
    }

    /// A head without a hidden layer (train-top --hidden 0) starts finetune's head without
    /// repeating --hidden 0; a --hidden that contradicts it is an error naming both.
    func testTopModelGivesTheHeadItsArchitecture() throws {
        let data = try writeImages("data", perClass: 2)
        let image = ["--device", "cpu", "--weights", "none", "--data", data.path, "--size", "32x32"]
        XCTAssertEqual(try run(["extract"] + image + ["--out", path("feat")]).status, 0)
        let top = try run(["train-top", "--device", "cpu", "--features", path("feat"), "--hidden", "0", "--dropout", "0.2", "--epochs", "1",
                           "--batch", "2", "--out", path("top")])
        XCTAssertEqual(top.status, 0, top.output)
        let ft = try run(["finetune"] + image + ["--top-model", path("top"), "--epochs", "1", "--batch", "2", "--out", path("ft")])
        XCTAssertEqual(ft.status, 0, ft.output)
        XCTAssertTrue(ft.output.contains("head initialised from"), ft.output)
        XCTAssertTrue(ft.output.contains("no hidden layer"), "the head's architecture is said\n\(ft.output)")
        let model = try Checkpoint.load(url("ft/last.json")).model
        XCTAssertEqual(model.headHidden, 0)
        XCTAssertEqual(model.headDropout, 0.2)
        assertCleanError(try run(["finetune"] + image + ["--top-model", path("top"), "--hidden", "16", "--epochs", "1", "--out", path("ft2")]),
                         ["--hidden 16", "--top-model", path("top"), "0"])
        XCTAssertEqual(try run(["finetune"] + image + ["--top-model", path("top"), "--hidden", "0", "--epochs", "1", "--batch", "2", "--out", path("ft3")]).status, 0)
    }
}
