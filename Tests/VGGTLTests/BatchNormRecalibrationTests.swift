import XCTest
import Foundation
import VGGTL

/// Issue 20, `--bn-recalibrate` (precise BatchNorm): at an epoch's end every BatchNorm layer
/// that trains its statistics gets, as moving statistics, the equal-weighted mean over the
/// training batches of the batch means and of the (unbiased) batch variances, computed with the
/// epoch's final weights; frozen layers keep theirs; a model without such a layer says so.
final class BatchNormRecalibrationTests: BinaryTestCase {
    /// `train` of VGG16-BN at 32x32 on 10 images in batches of 4, 4 and 2, one epoch, no
    /// augmentation, seed 7.
    func train(_ out: String, device: String = "cpu", extra: [String] = []) -> [String] {
        ["train", "--device", device, "--model", "vgg16-bn", "--data", path("data"), "--size", "32x32", "--hidden", "8",
         "--epochs", "1", "--batch", "4", "--seed", "7", "--out", path(out)] + extra
    }

    /// The statistics of every recalibrated BatchNorm layer recomputed here, independently of
    /// the binary's pass: for each training batch of epoch 0 (the loader the command builds,
    /// same seed, same order), layer by layer, the input of the layer with the layers before it
    /// normalising by this batch's own statistics (set as their moving statistics, biased, so
    /// that inference mode applies them), its per-channel mean and variance in float64; then
    /// the mean over batches, the variance made unbiased. Returns name -> (mean, variance).
    func expectedStatistics(run: String) throws -> [(name: String, mean: [Double], variance: [Double])] {
        let device = try CPUDevice()
        let (_, model) = try Checkpoint.restore(url(run).appendingPathComponent("last.json"), on: device)
        let bns = model.layers.compactMap { $0 as? BatchNormalization }
        XCTAssertEqual(bns.count, 13, "VGG16-BN has a BatchNorm after each of its 13 convolutions")
        let loader = BatchLoader(source: try ClassFolderSource(directory: url("data")), batchSize: 4,
                                 input: InputSpec(height: 32, width: 32, preprocessing: .rescale), shuffle: true, seed: 7)
        var sums = bns.map { ([Double](repeating: 0, count: $0.movingMean.count), [Double](repeating: 0, count: $0.movingMean.count)) }
        var batches = 0
        for batch in loader.batches(epoch: 0) {
            batches += 1
            let x = try Tensor(batch.x, shape: [batch.count, 32, 32, 3], on: device)
            for (k, bn) in bns.enumerated() {
                let node = try XCTUnwrap(model.network.inputs(of: XCTUnwrap(model.network.node(named: bn.name))).first)
                let input = try model.network.forward(x, .inference, upTo: node).toArray()
                let c = bn.movingMean.count, rows = input.count / c
                var mean = [Double](repeating: 0, count: c), variance = mean
                for r in 0..<rows { for j in 0..<c { mean[j] += Double(input[r * c + j]) } }
                for j in 0..<c { mean[j] /= Double(rows) }
                for r in 0..<rows { for j in 0..<c { let d = Double(input[r * c + j]) - mean[j]; variance[j] += d * d } }
                for j in 0..<c {
                    variance[j] /= Double(rows)
                    sums[k].0[j] += mean[j]
                    sums[k].1[j] += variance[j] * Double(rows) / Double(rows - 1)
                }
                // The next layers see this one normalise by the batch's own (biased) statistics.
                mean.map(Float.init).withUnsafeBufferPointer { device.write($0, to: bn.movingMean.buffer, offset: 0) }
                variance.map(Float.init).withUnsafeBufferPointer { device.write($0, to: bn.movingVariance.buffer, offset: 0) }
            }
        }
        XCTAssertEqual(batches, 3, "10 images in batches of 4")
        return bns.indices.map { k in (bns[k].name, sums[k].0.map { $0 / Double(batches) }, sums[k].1.map { $0 / Double(batches) }) }
    }

    /// The worst relative difference of the run's moving statistics from the expected ones.
    func worstDifference(run: String, expected: [(name: String, mean: [Double], variance: [Double])]) throws -> (String, Double) {
        let w = try weights(run)
        var worst = ("", 0.0)
        for e in expected {
            let mean = try XCTUnwrap(w["\(e.name)/moving_mean"]), variance = try XCTUnwrap(w["\(e.name)/moving_variance"])
            for j in e.mean.indices {
                // The mean against the channel's spread; the variance relative to itself.
                let dm = abs(Double(mean[j]) - e.mean[j]) / (e.variance[j].squareRoot() + 1e-6)
                let dv = abs(Double(variance[j]) - e.variance[j]) / (e.variance[j] + 1e-6)
                if dm > worst.1 { worst = ("\(e.name)/moving_mean[\(j)]", dm) }
                if dv > worst.1 { worst = ("\(e.name)/moving_variance[\(j)]", dv) }
            }
        }
        return worst
    }

    func assertMovingStatisticsAreTheMeanOfBatchStatistics(device: String, tolerance: Double) throws {
        _ = try writeImages("data", perClass: 5)
        let r = try run(train("run", device: device, extra: ["--bn-recalibrate"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("BatchNorm recalibration: the moving statistics of 13 BatchNorm layers are recomputed"), r.output)
        XCTAssertTrue(r.output.contains("BatchNorm statistics recalibrated over 3 training batches"), r.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).batchNormRecalibration, BatchNormRecalibration(maxBatches: 200))
        let expected = try expectedStatistics(run: "run")
        let worst = try worstDifference(run: "run", expected: expected)
        XCTAssertLessThan(worst.1, tolerance, "\(worst.0) on \(device)")
        // The check can tell: without recalibration the moving statistics are training's
        // exponential averages, far from these.
        let plain = try run(train("plain", device: device))
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertFalse(plain.output.contains("recalibrat"), plain.output)
        XCTAssertGreaterThan(try worstDifference(run: "plain", expected: try expectedStatistics(run: "plain")).1, 0.1)
    }

    func testMovingStatisticsAreTheMeanOfBatchStatisticsOnTheCPU() throws {
        try assertMovingStatisticsAreTheMeanOfBatchStatistics(device: "cpu", tolerance: 1e-4)
    }

    /// On PoCL: the binary's pass on OpenCL, the expected values on the CPU (GEMM tolerance).
    func testMovingStatisticsAreTheMeanOfBatchStatisticsOnPoCL() throws {
        guard let pocl = OpenCLDevice.enumerate().first(where: { $0.type == .cpu }) else { throw XCTSkip("no OpenCL CPU device (PoCL)") }
        try assertMovingStatisticsAreTheMeanOfBatchStatistics(device: "opencl:\(pocl.index)", tolerance: 1e-3)
    }

    /// --bn-recalibrate-batches 2: the pass stops after two batches (the third, of 2 images, is
    /// not in the mean).
    func testTheBatchCapIsKept() throws {
        _ = try writeImages("data", perClass: 5)
        let r = try run(train("run", extra: ["--bn-recalibrate", "--bn-recalibrate-batches", "2"]))
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("BatchNorm statistics recalibrated over 2 training batches"), r.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).batchNormRecalibration?.maxBatches, 2)
        assertCleanError(try run(train("bad", extra: ["--bn-recalibrate", "--bn-recalibrate-batches", "0"])), ["--bn-recalibrate-batches", "at least 1"])
    }

    /// Fine-tuning VGG16-BN with block5 unfrozen and batch statistics: block5's BatchNorm layers
    /// are recalibrated, the frozen blocks' stay exactly as they were; with finetune's default
    /// (moving statistics) nothing is recalibrated, and it says so.
    func testFrozenBatchNormLayersAreLeftAlone() throws {
        _ = try writeImages("data", perClass: 5)
        let base = ["finetune", "--device", "cpu", "--model", "vgg16-bn", "--weights", "none", "--data", path("data"), "--size", "32x32",
                    "--hidden", "8", "--epochs", "1", "--batch", "4", "--seed", "7", "--unfreeze", "block5"]
        let recal = try run(base + ["--bn-batch-statistics", "--bn-recalibrate", "--out", path("recal")])
        XCTAssertEqual(recal.status, 0, recal.output)
        XCTAssertTrue(recal.output.contains("the moving statistics of 3 BatchNorm layers are recomputed"), recal.output)
        let plain = try run(base + ["--bn-batch-statistics", "--out", path("plain")])
        XCTAssertEqual(plain.status, 0, plain.output)
        let a = try weights("recal"), b = try weights("plain")
        for (name, values) in a where name.hasSuffix("moving_mean") || name.hasSuffix("moving_variance") {
            if name.hasPrefix("block5") {
                XCTAssertNotEqual(values, b[name], "\(name) is recalibrated")
            } else {
                XCTAssertEqual(values, b[name], "\(name) is frozen")
                XCTAssertTrue(values.allSatisfy { $0 == (name.hasSuffix("mean") ? 0 : 1) }, "\(name) keeps its initial statistics")
            }
        }
        let moving = try run(base + ["--bn-recalibrate", "--out", path("moving")])
        XCTAssertEqual(moving.status, 0, moving.output)
        XCTAssertTrue(moving.output.contains("--bn-recalibrate does nothing"), moving.output)
        XCTAssertEqual(moving.output.components(separatedBy: "--bn-recalibrate does nothing").count, 2, "said once\n\(moving.output)")
        XCTAssertFalse(moving.output.contains("BatchNorm statistics recalibrated over"), moving.output)
    }

    /// Two stages: the head alone has no BatchNorm to recalibrate and says nothing about it;
    /// the stage that unfreezes block5 recalibrates its three layers after each of its epochs.
    func testTheSecondStageOfATwoStageRunRecalibrates() throws {
        _ = try writeImages("data", perClass: 5)
        let r = try run(["finetune", "--device", "cpu", "--model", "vgg16-bn", "--weights", "none", "--data", path("data"), "--size", "32x32",
                         "--hidden", "8", "--head-epochs", "1", "--epochs", "2", "--batch", "4", "--seed", "7", "--unfreeze", "block5",
                         "--bn-batch-statistics", "--bn-recalibrate", "--out", path("run")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains("does nothing"), r.output)
        let stage2 = try XCTUnwrap(r.output.components(separatedBy: "stage 2:").last, r.output)
        XCTAssertTrue(stage2.contains("the moving statistics of 3 BatchNorm layers are recomputed"), r.output)
        XCTAssertEqual(stage2.components(separatedBy: "BatchNorm statistics recalibrated over 3 training batches").count, 3, "after each of its 2 epochs\n\(r.output)")
        XCTAssertEqual(r.output.components(separatedBy: "BatchNorm statistics recalibrated over").count, 3, "none in the head's stage\n\(r.output)")
    }

    /// A head on features has no BatchNorm: one line says the flag does nothing.
    func testAModelWithoutBatchNormSaysTheFlagDoesNothing() throws {
        _ = try writeFeatures("feat")
        let r = try run(["train-top", "--features", path("feat"), "--out", path("run"), "--epochs", "2", "--bn-recalibrate"] + headFlags)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(r.output.components(separatedBy: "--bn-recalibrate does nothing").count, 2, r.output)
    }

    /// The checkpoint records the setting; a resume that turns it off is taken with a note.
    func testAResumeTakesAnotherSettingWithANote() throws {
        _ = try writeImages("data", perClass: 5)
        XCTAssertEqual(try run(train("run", extra: ["--bn-recalibrate"])).status, 0)
        let r = try run(["train", "--device", "cpu", "--model", "vgg16-bn", "--data", path("data"), "--size", "32x32", "--hidden", "8",
                         "--epochs", "2", "--batch", "4", "--seed", "7", "--out", path("run"), "--resume"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("note: --resume: --bn-recalibrate on (200 batches) in the run, off now: from the end of epoch 2 on"), r.output)
        XCTAssertNil(try Checkpoint.load(url("run/last.json")).batchNormRecalibration)
    }

    func testLRFindRefusesIt() throws {
        _ = try writeImages("data", perClass: 2)
        assertCleanError(try run(["lr-find", "--device", "cpu", "--weights", "none", "--data", path("data"), "--size", "32x32",
                                  "--out", path("lr"), "--bn-recalibrate"]), ["--bn-recalibrate", "lr-find"])
    }
}
