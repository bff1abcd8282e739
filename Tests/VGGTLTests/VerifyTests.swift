import XCTest
import Foundation
@testable import VGGTL

/// `--verify` (issue 12): no false alarm where the device is right, a real fault is caught.
/// The device is PoCL (an OpenCL device on this CPU) at 32x32 so that the whole matrix stays
/// quick; the tolerance is calibrated against float32 rounding (see Train/Verify.swift).
final class VerifyTests: BinaryTestCase {
    func openCL() throws -> OpenCLDevice {
        try requireOpenCL()
        return try OpenCLDevice(index: 0)
    }

    /// A labelled batch of random images for a 32x32 model with `classes` classes.
    func batch(_ n: Int, classes: Int = 3, seed: UInt64 = 1) -> Batch {
        var g = SeededGenerator(seed: seed)
        return Batch(x: (0..<(n * 32 * 32 * 3)).map { _ in g.uniform(0, 1) }, labels: (0..<n).map { Float($0 % classes) },
                     indices: Array(0..<n), count: n)
    }

    func model(_ trunk: ModelConfig.Trunk, dropout: Float, unfreeze: UnfreezeSpec, on device: Device, seed: UInt64 = 7) throws -> Model {
        var c = ModelConfig(trunk: trunk, inputShape: [32, 32, 3], headHidden: 32, headDropout: dropout, classes: 3)
        c.frozenBatchNormStatistics = false
        let m = try Model(c, on: device, seed: seed)
        m.apply(unfreeze)
        return m
    }

    /// Zero false alarms over VGG16 and VGG16-BN, every --unfreeze choice, dropout on and off,
    /// batch 1 and 16, CPU vs PoCL. Also: the model is left as it was.
    func testNoFalseAlarmsOverTheMatrixOnPoCL() throws {
        let cl = try openCL()
        // Every --unfreeze choice on VGG16 and the main ones on VGG16-BN at batch 1 (dropout on),
        // then batch 16 with dropout off and on.
        var cases: [(ModelConfig.Trunk, Float, UnfreezeSpec, Int)] = []
        for u in [UnfreezeSpec.none, .fromBlock(5), .fromBlock(4), .fromBlock(3), .fromBlock(2), .fromBlock(1), .all, .lastLayers(3)] {
            cases.append((.vgg16, 0.5, u, 1))
        }
        for u in [UnfreezeSpec.none, .fromBlock(3), .all, .lastLayers(3)] { cases.append((.vgg16BN, 0.5, u, 1)) }
        for trunk in [ModelConfig.Trunk.vgg16, .vgg16BN] { cases += [(trunk, 0, .all, 16), (trunk, 0.5, .fromBlock(4), 16)] }
        var worst = 0.0
        for (trunk, dropout, unfreeze, n) in cases {
            let m = try model(trunk, dropout: dropout, unfreeze: unfreeze, on: cl)
            let before = weightSet(of: m.layers), steps = m.dropoutSteps
            let t = Date()
            let r = try Verification.firstBatch(m, batch: batch(n), cpu: { try CPUDevice() })
            let what = "\(trunk.rawValue) unfreeze \(unfreeze) dropout \(dropout) batch \(n)"
            XCTAssertTrue(r.agrees, "\(what): false alarm\n\(r.table)")
            XCTAssertEqual(r.checks.count, 2 + m.network.trainableParameters.count, what)
            worst = max(worst, r.worst.score)
            print(String(format: "verify %@: worst %@ error/tolerance %.3f (%.1f s)", what, r.worst.name, r.worst.score, Date().timeIntervalSince(t)))
            // Verify leaves the model as it was: weights, BatchNorm statistics, dropout counters.
            let after = weightSet(of: m.layers)
            for (a, b) in zip(before.tensors, after.tensors) { XCTAssertEqual(a.values, b.values, "\(what): \(a.name) changed") }
            XCTAssertEqual(m.dropoutSteps, steps, what)
        }
        print("verify matrix: \(cases.count) cases, largest error/tolerance \(String(format: "%.3f", worst))")
    }

    /// The calibration, without a second device: the CPU's own two convolution algorithms
    /// (Winograd and im2col sum in other orders) agree within the tolerance, as PoCL does.
    func testTheCPUsTwoConvolutionAlgorithmsAgreeWithinTheTolerance() throws {
        let im2col = try CPUDevice(options: .init(convolution: .im2col))
        let winograd = try CPUDevice(options: .init(convolution: .winograd4))
        for trunk in [ModelConfig.Trunk.vgg16, .vgg16BN] {
            let b = batch(4)
            let a = try model(trunk, dropout: 0.5, unfreeze: .all, on: im2col)
            let results = try Verification.pass(a, x: b.x, batch: b)
            let twin = try model(trunk, dropout: 0.5, unfreeze: .all, on: winograd)
            let r = try Verification.check(results, from: "cpu im2col", against: twin, weights: weightSet(of: a.layers), batch: b, samples: 2)
            XCTAssertTrue(r.agrees, "\(trunk.rawValue): im2col vs Winograd\n\(r.table)")
            // The algorithms really differ somewhere (else this calibrates nothing).
            XCTAssertTrue(r.checks.contains { $0.error > 0 }, r.table)
            print("im2col vs Winograd, \(trunk.rawValue): largest error/tolerance \(String(format: "%.3f", r.worst.score)) (\(r.worst.name))")
        }
    }

    /// A disagreement is judged per tensor: a gradient that is zero up to rounding (a conv bias
    /// in front of BatchNorm) passes with a large relative error; a scaled gradient does not.
    func testTheCriterionOnKnownNumbers() {
        let cpu: [(name: String, values: [Float])] = [("d big", [1, -2, 3, 4]), ("d zero", [1e-9, -2e-9]), ("d head", [0.5, 0.25])]
        var device = cpu
        device[1].values = [-3e-9, 2e-9]          // pure rounding noise, 300% relative
        let noisy = Verification.compare(device: "test", device: device, cpu: cpu, rounding: [0, 4e-9, 0])
        XCTAssertTrue(noisy.agrees, noisy.table)
        device[2].values = [0.525, 0.2625]       // scaled by 1.05
        let scaled = Verification.compare(device: "test", device: device, cpu: cpu, rounding: [0, 4e-9, 1e-7])
        XCTAssertFalse(scaled.agrees)
        XCTAssertEqual(scaled.failures.map(\.name), ["d head"])
        XCTAssertTrue(scaled.disagreement.contains("d head relative L2 error 5.00e-02"), scaled.disagreement)
        XCTAssertFalse(scaled.disagreement.lowercased().contains("report the device"), scaled.disagreement)
    }

    /// Through the binary: --verify-report prints the table and agrees; a planted wrong kernel
    /// (every bias gradient scaled by 1.05 on the device) stops the run with the numbers.
    func testVerifyReportAndAPlantedWrongKernelThroughTheBinary() throws {
        try requireOpenCL()
        let data = try writeImages("data", perClass: 4)
        let args = ["train", "--device", "opencl", "--model", "vgg16", "--data", data.path, "--size", "32x32", "--batch", "8",
                    "--epochs", "1", "--hidden", "16", "--verify-report"]
        let good = try run(args + ["--out", path("good")])
        XCTAssertEqual(good.status, 0, good.output)
        XCTAssertTrue(good.output.contains("agree within float32 rounding") && good.output.contains("d block5_conv3/bias"), good.output)
        XCTAssertFalse(good.output.contains("DISAGREE"), good.output)
        let bad = try run(args + ["--out", path("bad")], env: ["VGGTL_TEST_SCALE_BIAS_GRAD": "1.05"], binary: faultHarnessBinary)
        assertCleanError(bad, ["--verify", "differs from the CPU by more than float32 rounding", "bias relative L2 error 5.00e-02", "--verify-report"])
        XCTAssertTrue(bad.output.contains("DISAGREE"), bad.output)
        XCTAssertFalse(bad.output.lowercased().contains("report the device"), bad.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("bad/last.json")), "nothing trained after a disagreement")
    }
}
