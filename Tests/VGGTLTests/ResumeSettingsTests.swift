import XCTest
import Foundation
import VGGTL

/// Issue 22, item 2: what `--resume` does with settings that differ from the run's. What makes
/// another model or another task is refused; what a user changes on purpose (learning rate,
/// epochs, batch) is taken and said with both values, and history.csv records what each epoch
/// really used.
final class ResumeSettingsTests: BinaryTestCase {
    func history(_ run: String) throws -> [[String]] {
        try String(contentsOf: url("\(run)/history.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
    }

    func flags(lr: String, batch: String = "8", optimizer: String = "sgd") -> [String] {
        ["--device", "cpu", "--batch", batch, "--hidden", "16", "--optimizer", optimizer, "--lr", lr, "--seed", "7"]
    }

    /// Interrupted in epoch 2 at lr 0.01, resumed at 0.001: the interrupted epoch finishes at its
    /// rate, the new rate starts with the next epoch, the note says so, history.csv agrees.
    func testAnotherLearningRateIsSaidWithBothValuesAndHistoryRecordsTheRateEachEpochUsed() throws {
        let feat = try writeFeatures("feat")
        // 40 rows, batch 8: 5 batches per epoch; the 6th is epoch 2, batch 1.
        let cut = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "2"] + flags(lr: "0.01"),
                          env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "6"], binary: faultHarnessBinary)
        XCTAssertEqual(cut.status, 130, cut.output)
        let resumed = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--resume"] + flags(lr: "0.001"))
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let notes = resumed.output.split(separator: "\n").filter { $0.hasPrefix("note: --resume") }
        XCTAssertTrue(notes.contains { $0.contains("--lr") && $0.contains("0.01") && $0.contains("0.001") && $0.contains("epoch 3") }, resumed.output)
        XCTAssertTrue(notes.contains { $0.contains("--epochs") && $0.contains("2") && $0.contains("3") }, resumed.output)
        XCTAssertEqual(try history("run").map { $0[5] }, ["0.01", "0.01", "0.001"], "the lr column of history.csv")
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).history.records.map(\.learningRate), [0.01, 0.01, 0.001].map { Double(Float($0)) })
    }

    /// A finished run resumed with the same epochs says it is finished and how to extend it
    /// (exit 0: re-running a job script that ends in --resume is not an error); a larger
    /// --epochs continues training from where it ended.
    func testAFinishedRunSaysSoAndALargerEpochsExtendsIt() throws {
        let feat = try writeFeatures("feat")
        let common = ["train-top", "--features", feat, "--out", path("run")] + flags(lr: "0.01")
        XCTAssertEqual(try run(common + ["--epochs", "2"]).status, 0)
        let again = try run(common + ["--epochs", "2", "--resume"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.contains("finished its 2 epochs") && again.output.contains("--epochs"), again.output)
        XCTAssertFalse(again.output.contains("run folder:"), "nothing was trained\n\(again.output)")
        let fewer = try run(common + ["--epochs", "1", "--resume"])
        XCTAssertEqual(fewer.status, 0, fewer.output)
        XCTAssertTrue(fewer.output.contains("finished its 2 epochs"), fewer.output)
        let longer = try run(common + ["--epochs", "4", "--resume"])
        XCTAssertEqual(longer.status, 0, longer.output)
        XCTAssertTrue(longer.output.contains("Epoch 3/4") && longer.output.contains("Epoch 4/4"), longer.output)
        XCTAssertEqual(try history("run").map { $0[0] }, ["1", "2", "3", "4"])
    }

    /// What makes another model or another task is refused, naming the flag and both values.
    func testAnotherOptimizerDataOrHeadIsRefusedWithBothValues() throws {
        let feat = try writeFeatures("feat")
        let common = ["train-top", "--features", feat, "--out", path("run"), "--epochs", "2"]
        XCTAssertEqual(try run(common + ["--epochs", "1"] + flags(lr: "0.01")).status, 0)
        assertCleanError(try run(common + ["--resume"] + flags(lr: "0.01", optimizer: "adam")), ["--resume", "--optimizer", "sgd", "adam", path("run")])
        var hidden = flags(lr: "0.01")
        hidden[5] = "32"
        assertCleanError(try run(common + ["--resume"] + hidden), ["--resume", "--hidden", "16", "32"])
        let more = try writeFeatures("more", rows: 48)
        assertCleanError(try run(["train-top", "--features", more, "--out", path("run"), "--epochs", "2", "--resume"] + flags(lr: "0.01")),
                         ["--resume", "40 samples", "48"])
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 1, "a refused resume leaves the run as it was")
    }

    /// Fine-tuning resumed with another --unfreeze is refused (the checkpoint's optimizer state
    /// belongs to the layers it trained).
    func testAnotherUnfreezeIsRefused() throws {
        let data = try writeImages("data", perClass: 2)
        let common = ["finetune", "--device", "cpu", "--weights", "none", "--data", data.path, "--size", "32x32", "--batch", "2",
                      "--hidden", "8", "--out", path("run")]
        XCTAssertEqual(try run(common + ["--unfreeze", "block5", "--epochs", "1"]).status, 0)
        assertCleanError(try run(common + ["--unfreeze", "block4", "--epochs", "2", "--resume"]), ["--resume", "--unfreeze", "block5", "block4"])
    }

    /// The batch size changed on resume: the note counts the samples of the interrupted epoch
    /// that are done, never more than the data holds.
    func testTheNoteAboutAnotherBatchCountsNoMoreSamplesThanTheDataHolds() throws {
        let feat = try writeFeatures("feat", rows: 36)
        // 36 rows, batch 8: 5 batches, the last of 4; interrupted after the 5th.
        let cut = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "2"] + flags(lr: "0.01"),
                          env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "5"], binary: faultHarnessBinary)
        XCTAssertEqual(cut.status, 130, cut.output)
        let resumed = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "2", "--resume"] + flags(lr: "0.01", batch: "4"))
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("after its 36 samples done"), resumed.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 2)
    }
}
