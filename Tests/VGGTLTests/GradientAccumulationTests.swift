import XCTest
import Foundation
import VGGTL

/// Issue 20, gradient accumulation: `--accumulate N` sums the gradients of N batches before
/// one optimiser step. Without BatchNorm and dropout, batch 4 x 4 is batch 16 within float32
/// rounding; an interruption stops at a step's end and the resume finishes the run exactly.
final class GradientAccumulationTests: BinaryTestCase {
    /// A head on 40 feature rows without dropout: batch 16 makes steps of 16, 16 and 8 rows per
    /// epoch; batch 4 x 4 the same (its last step sums two batches).
    func head(_ run: String, batch: String, accumulate: String? = nil, device: String = "cpu", epochs: String = "2") -> [String] {
        ["train-top", "--features", path("feat"), "--out", path(run), "--epochs", epochs, "--device", device, "--batch", batch,
         "--hidden", "16", "--dropout", "0", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.05", "--seed", "7"]
            + (accumulate.map { ["--accumulate", $0] } ?? [])
    }

    /// The largest difference between two runs' arrays, relative to each array's largest value.
    func largestRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> (name: String, difference: Float) {
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        var worst = ("", Float(0))
        for (name, x) in a {
            guard let y = b[name], x.count == y.count else { XCTFail("\(name) differs in shape"); continue }
            let scale = max(y.map(abs).max() ?? 0, 1e-3)
            let d = zip(x, y).map { abs($0 - $1) }.max() ?? 0
            if d / scale > worst.1 { worst = (name, d / scale) }
        }
        return worst
    }

    func assertAccumulationMatchesTheBigBatch(device: String) throws {
        _ = try writeFeatures("feat")
        let big = try run(head("big", batch: "16", device: device))
        XCTAssertEqual(big.status, 0, big.output)
        let accumulated = try run(head("acc", batch: "4", accumulate: "4", device: device))
        XCTAssertEqual(accumulated.status, 0, accumulated.output)
        XCTAssertTrue(accumulated.output.contains("gradient accumulation: 4 batches of 4 per optimiser step"), accumulated.output)
        let small = try run(head("small", batch: "4", device: device))
        XCTAssertEqual(small.status, 0, small.output)

        let a = try Checkpoint.load(url("acc/last.json")), b = try Checkpoint.load(url("big/last.json"))
        XCTAssertEqual(a.accumulate, 4)
        XCTAssertEqual(a.optimizerIterations, 6, "3 optimiser steps per epoch")
        XCTAssertEqual(a.optimizerIterations, b.optimizerIterations)
        let same = largestRelativeDifference(try weights("acc"), try weights("big"))
        XCTAssertLessThan(same.difference, 1e-5, "\(same.name): batch 4 x 4 against batch 16 on \(device)")
        // The comparison can tell runs apart: batch 4 without accumulation takes other steps.
        let other = largestRelativeDifference(try weights("small"), try weights("big"))
        XCTAssertGreaterThan(other.difference, 1e-3, "batch 4 against batch 16")
        // The epoch's loss is the mean over its samples either way.
        for (x, y) in zip(a.history.records, b.history.records) { XCTAssertEqual(x.loss, y.loss, accuracy: 1e-5 * max(1, abs(y.loss))) }
    }

    func testFourBatchesOfFourTrainAsOneBatchOfSixteenOnTheCPU() throws {
        try assertAccumulationMatchesTheBigBatch(device: "cpu")
    }

    func testFourBatchesOfFourTrainAsOneBatchOfSixteenOnPoCL() throws {
        guard let pocl = OpenCLDevice.enumerate().first(where: { $0.type == .cpu }) else { throw XCTSkip("no OpenCL CPU device (PoCL)") }
        try assertAccumulationMatchesTheBigBatch(device: "opencl:\(pocl.index)")
    }

    /// Ctrl-C after the 5th batch of steps of 4 batches: the run finishes the step (batch 8),
    /// checkpoints there, and the resume ends with the weights of an uninterrupted run.
    func testAnInterruptionWaitsForTheStepsEndAndTheResumeLosesNoGradient() throws {
        _ = try writeFeatures("feat")
        let whole = try run(head("whole", batch: "4", accumulate: "4"))
        XCTAssertEqual(whole.status, 0, whole.output)
        let cut = try run(head("cut", batch: "4", accumulate: "4"), env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "5"], binary: faultHarnessBinary)
        XCTAssertEqual(cut.status, 130, cut.output)
        let saved = try Checkpoint.load(url("cut/last.json"))
        XCTAssertEqual(saved.epoch, 0)
        XCTAssertEqual(saved.batchesDone, 8, "the checkpoint sits at the end of the second step")
        XCTAssertEqual(saved.optimizerIterations, 2)
        let resumed = try run(head("cut", batch: "4", accumulate: "4") + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertFalse(resumed.output.contains("--accumulate"), "same setting, no note: \(resumed.output)")
        let a = try weights("cut"), b = try weights("whole")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (name, values) in b { XCTAssertEqual(a[name], values, "\(name) after the resume") }
        XCTAssertEqual(try Checkpoint.load(url("cut/last.json")).optimizerIterations, 6)
    }

    /// Another --accumulate on resume is taken, as another batch size is, and said with both values.
    func testAnotherAccumulateOnResumeIsSaidWithBothValues() throws {
        _ = try writeFeatures("feat")
        let first = try run(head("run", batch: "4", accumulate: "4", epochs: "1"))
        XCTAssertEqual(first.status, 0, first.output)
        let resumed = try run(head("run", batch: "4", accumulate: "2") + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let note = resumed.output.split(separator: "\n").first { $0.hasPrefix("note: --resume") && $0.contains("--accumulate") }
        XCTAssertNotNil(note, resumed.output)
        XCTAssertTrue(note?.contains("4 in the run, 2 now") ?? false, resumed.output)
        let info = try Checkpoint.load(url("run/last.json"))
        XCTAssertEqual(info.accumulate, 2)
        // Epoch 1: 3 steps of 4 batches; epoch 2: 5 steps of 2.
        XCTAssertEqual(info.optimizerIterations, 8)
    }

    func testAccumulateBelowOneIsAOneLineError() throws {
        _ = try writeFeatures("feat")
        assertCleanError(try run(head("run", batch: "4", accumulate: "0")), ["--accumulate", "0", "at least 1"])
    }
}
