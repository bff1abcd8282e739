import XCTest
import Foundation
@testable import VGGTL
@testable import VGGTLOpenCL
#if canImport(Glibc)
import Glibc
#endif

/// Issue 6: bad input, interrupted runs and device faults end in a clear message with nothing
/// lost. Most cases run the real `vggtl` binary (as a user does) on small data written here:
/// feature files for the fast head-training cases, JPEG class folders for the image cases.
final class ReliabilityTests: BinaryTestCase {
    // MARK: - Data

    func testUnreadableImagesAreSkippedWithOneWarningLineEachAndACount() throws {
        let data = try writeImages("data", perClass: 2)
        let good = try ImageCodec.encodeJPEG(noiseImage(width: 40, height: 40, seed: 99, red: true))
        try put(Array(good.prefix(good.count / 2)), "cats/truncated.jpg", in: data)
        var corrupt = good
        for i in 150..<corrupt.count - 2 { corrupt[i] = 0xFF }
        try put(corrupt, "cats/corrupt.jpg", in: data)
        try put([], "dogs/empty.jpg", in: data)
        try put(Array("<html>not an image</html>".utf8), "dogs/page.jpg", in: data)
        var huge = try ImageCodec.encodeJPEG(noiseImage(width: 8, height: 8, seed: 5, red: false))
        let sof = (0..<huge.count - 1).first { huge[$0] == 0xFF && huge[$0 + 1] == 0xC0 }!
        huge.replaceSubrange(sof + 5..<sof + 9, with: [0x4E, 0x20, 0x4E, 0x20])  // 20000x20000
        try put(huge, "dogs/huge.jpg", in: data)
        let finetune = ["finetune", "--weights", "none", "--unfreeze", "none", "--data", data.path, "--size", "32x32"] + headFlags
        let r = try run(finetune + ["--out", path("run"), "--epochs", "2"])
        XCTAssertEqual(r.status, 0, r.output)
        for (file, says) in [("truncated.jpg", "truncated"), ("corrupt.jpg", "cannot decode JPEG"), ("empty.jpg", "empty"),
                             ("page.jpg", "HTML"), ("huge.jpg", "20000x20000")] {
            let lines = r.output.split(separator: "\n").filter { $0.hasPrefix("warning: skipped") && $0.contains(file) }
            XCTAssertEqual(lines.count, 1, "one warning line for \(file) over both epochs:\n\(r.output)")
            XCTAssertTrue(lines.first?.contains(says) ?? false, "\(file): \(lines)")
        }
        XCTAssertTrue(r.output.contains("warning: 5 unreadable images skipped"), r.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 2)

        // --strict: the same data is an error that names the file.
        let s = try run(finetune + ["--out", path("strict"), "--epochs", "1", "--strict"])
        assertCleanError(s, ["--strict", data.path + "/"])
        let e = try run(["extract", "--device", "cpu", "--weights", "none", "--data", data.path, "--out", path("feat"), "--size", "32x32", "--strict"])
        assertCleanError(e, ["--strict", "cannot be read"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("feat/features.npy")))
    }

    func testStructuralProblemsAreErrorsThatSayWhatWasFound() throws {
        let one = try writeImages("one", perClass: 2, classes: ["cats"])
        assertCleanError(try run(["extract", "--device", "cpu", "--weights", "none", "--data", one.path, "--out", path("f1"), "--size", "32x32"]),
                         ["found 1 class 'cats'", "need at least 2"])
        let flat = url("flat")
        try put(try ImageCodec.encodeJPEG(noiseImage(width: 8, height: 8, seed: 1, red: true)), "a.jpg", in: flat)
        assertCleanError(try run(["extract", "--device", "cpu", "--weights", "none", "--data", flat.path, "--out", path("f2"), "--size", "32x32"]),
                         ["no class subfolders", "1 images directly"])
        let empty = url("empty")
        try FileManager.default.createDirectory(at: empty.appendingPathComponent("cats"), withIntermediateDirectories: true)
        try put(Array("notes".utf8), "dogs/readme.txt", in: empty)
        assertCleanError(try run(["extract", "--device", "cpu", "--weights", "none", "--data", empty.path, "--out", path("f3"), "--size", "32x32"]),
                         ["found 2 classes", "no .jpg/.jpeg/.png images"])
        // One empty class folder beside full ones: a warning that names it (Keras keeps the class too).
        let partial = try writeImages("partial", perClass: 2)
        try FileManager.default.createDirectory(at: partial.appendingPathComponent("emu"), withIntermediateDirectories: true)
        let r = try run(["extract", "--device", "cpu", "--weights", "none", "--data", partial.path, "--out", path("f4"), "--size", "32x32"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("warning: class 'emu' has no .jpg/.jpeg/.png images"), r.output)
    }

    func testAwkwardButValidImagesAreRead() throws {
        let root = url("odd data")
        let cats = "chats \u{e9}t\u{e9}", dogs = "\u{72ac} dogs"
        try put(try ImageCodec.encodeJPEG(noiseImage(width: 1, height: 1, seed: 1, red: true)), "\(cats)/tiny 1x1.jpg", in: root)
        try put(try ImageCodec.encodeJPEG(noiseImage(width: 40, height: 30, seed: 2, red: true), grayscale: true), "\(cats)/gray.jpg", in: root)
        try put(try ImageCodec.encodeJPEG(noiseImage(width: 40, height: 30, seed: 3, red: true), progressive: true), "\(cats)/deep/nested/progressive.JPG", in: root)
        try put(Fixtures.cmykJPEG, "\(dogs)/cmyk.jpeg", in: root)
        try put(try ImageCodec.encodePNG(noiseImage(width: 3, height: 500, seed: 4, red: false)), "\(dogs)/\u{5c0f}\u{72d7} tall.png", in: root)
        let r = try run(["extract", "--device", "cpu", "--weights", "none", "--data", root.path, "--out", path("feat"), "--size", "32x32", "--strict"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertFalse(r.output.contains("warning"), r.output)
        XCTAssertEqual(try NPY.read(url("feat/features.npy")).shape, [5, 1, 1, 512])
        let classes = try JSONDecoder().decode([String].self, from: Data(contentsOf: url("feat/classes.json")))
        XCTAssertEqual(classes, [cats, dogs])
    }

    // MARK: - Weights and checkpoints

    func testDamagedCheckpointsAreErrorsNamingFileTensorAndShapes() throws {
        let feat = try writeFeatures("feat")
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1"] + headFlags).status, 0)
        let info = try Checkpoint.load(url("run/last.json"))
        let arrays = url("run/" + info.weightsFile)
        let bytes = try Data(contentsOf: arrays)
        let resume = ["train-top", "--features", feat, "--out", path("run"), "--epochs", "2", "--resume"] + headFlags

        try bytes.prefix(bytes.count - 10).write(to: arrays)
        assertCleanError(try run(resume), [arrays.path, "truncated"])

        var damaged = bytes
        damaged[3] = 0x7F   // the header length now points far beyond the file
        try damaged.write(to: arrays)
        assertCleanError(try run(resume), [arrays.path])

        // Arrays of another model under the checkpoint's name: tensor and both shapes.
        try Safetensors.write(WeightSet(tensors: [("dense/kernel", [8, 5], [Float](repeating: 0, count: 40))]), to: arrays)
        assertCleanError(try run(resume), ["dense/kernel", "[8,5]", "[8,16]", arrays.path])

        try Data("{\"format\": \"vggtl-checkpoint-1\", \"epoch\": ".utf8).write(to: url("run/last.json"))
        assertCleanError(try run(resume), [path("run/last.json"), "not a vggtl checkpoint"])
    }

    func testClassCountMismatchBetweenCheckpointAndData() throws {
        let feat = try writeFeatures("feat")
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1"] + headFlags).status, 0)
        let three = try writeImages("three", perClass: 1, classes: ["cats", "dogs", "emus"])
        assertCleanError(try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", three.path]),
                         ["3 classes", "2 classes", "predictions layer has 1 unit"])
        let feat3 = try writeFeatures("feat3", classes: ["cats", "dogs", "emus"])
        assertCleanError(try run(["train-top", "--features", feat3, "--out", path("run"), "--epochs", "2", "--resume"] + headFlags),
                         ["--resume", "2 classes", "3 classes"])
    }

    // MARK: - Flags

    func testImpossibleFlagsAreRejectedBeforeAnyWork() throws {
        let data = try writeImages("data", perClass: 1)
        try Data("a file".utf8).write(to: url("file"))
        let base = ["--data", data.path, "--out", path("out")]
        let cases: [([String], String)] = [
            (["train", "--size", "0x0"] + base, "--size"),
            (["train", "--size", "16x16"] + base, "--size"),
            (["train", "--size", "99999x64"] + base, "--size"),
            (["train", "--size", "big"] + base, "--size"),
            (["finetune", "--weights", "imagenet", "--size", "8x8"] + base, "--size"),
            (["train", "--batch", "0"] + base, "--batch"),
            (["train", "--batch=-3"] + base, "--batch"),
            (["train", "--lr=-0.1"] + base, "--lr"),
            (["train", "--lr", "0"] + base, "--lr"),
            (["train", "--epochs", "0"] + base, "--epochs"),
            (["train", "--dropout", "1.5"] + base, "--dropout"),
            (["train", "--preprocess", "magic"] + base, "--preprocess"),
            (["train", "--device", "tpu"] + base, "--device"),
            (["train", "--device", "opencl:9"] + base, "opencl:9"),
            (["train", "--data", data.path, "--out", path("file/run")], "--out"),
            (["extract", "--weights", "none", "--data", data.path, "--out", path("file/feat")], "--out"),
            (["extract", "--weights", "none", "--data", data.path, "--out", path("feat"), "--batch", "0"], "--batch"),
            (["evaluate", "--model", path("out"), "--data", data.path, "--batch", "0"], "--batch"),
        ]
        for (args, flag) in cases {
            let r = try run(args + (args.contains("--device") ? [] : ["--device", "cpu"]))
            assertCleanError(r, [flag])
            XCTAssertFalse(r.output.split(separator: "\n").contains { $0.hasPrefix("Epoch") || $0.hasPrefix("found ") || $0.hasPrefix("device:") || $0.hasPrefix("training on") },
                           "\(args): work started:\n\(r.output)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("out/last.json")))
    }

    // MARK: - Interruption

    /// SIGINT in the middle of an epoch (through the real handler): a checkpoint at that batch,
    /// exit status 130; --resume ends bit-identical to a run that was never interrupted
    /// (weights, Adam state, dropout masks, history).
    func testSIGINTMidEpochCheckpointsAndResumeEqualsUninterruptedRun() throws {
        let feat = try writeFeatures("feat", rows: 40)
        let common = ["train-top", "--features", feat, "--epochs", "3", "--val-split", "0.2"] + headFlags
        XCTAssertEqual(try run(common + ["--out", path("full")]).status, 0)

        // 32 training rows, batch 8: 4 batches per epoch; the 6th batch is epoch 2, batch 2.
        let r = try run(common + ["--out", path("split")], env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "6"], binary: faultHarnessBinary)
        XCTAssertEqual(r.status, 130, r.output)
        XCTAssertTrue(r.output.contains("interrupted by SIGINT (Ctrl-C) in epoch 2 after batch 2 of 4"), r.output)
        XCTAssertTrue(r.output.contains("--resume"), r.output)
        XCTAssertFalse(r.output.contains("vggtl: error"), r.output)
        let saved = try Checkpoint.load(url("split/last.json"))
        XCTAssertEqual(saved.epoch, 1)
        XCTAssertEqual(saved.batchesDone, 2)
        XCTAssertEqual(saved.history.records.count, 1)

        let resumed = try run(common + ["--out", path("split"), "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("after epoch 1, batch 2 of epoch 2"), resumed.output)
        try assertSameRun("full", "split")
    }

    func assertSameRun(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let ia = try Checkpoint.load(url("\(a)/last.json")), ib = try Checkpoint.load(url("\(b)/last.json"))
        XCTAssertEqual(ia.epoch, ib.epoch, file: file, line: line)
        XCTAssertNil(ib.batchesDone, file: file, line: line)
        XCTAssertEqual(ia.history.records.map(\.loss), ib.history.records.map(\.loss), file: file, line: line)
        XCTAssertEqual(ia.history.records.map(\.valLoss), ib.history.records.map(\.valLoss), file: file, line: line)
        XCTAssertEqual(ia.optimizerIterations, ib.optimizerIterations, file: file, line: line)
        XCTAssertEqual(ia.dropoutSteps, ib.dropoutSteps, file: file, line: line)
        let wa = try weights(a), wb = try weights(b)
        XCTAssertEqual(wa.keys.sorted(), wb.keys.sorted(), file: file, line: line)
        for (name, v) in wa { XCTAssertEqual(v, wb[name], "\(name) after resume", file: file, line: line) }
    }

    /// SIGTERM sent from outside while a fine-tuning run on images (block5 and the head train,
    /// with augmentation) is in an epoch: exit status 143, and the resumed run equals the
    /// uninterrupted one.
    func testSIGTERMFromOutsideDuringImageTrainingThenResumeEqualsUninterruptedRun() throws {
        let data = try writeImages("data", perClass: 2)
        var flags = headFlags
        flags[3] = "2"  // --batch 2: 2 batches
        let common = ["finetune", "--weights", "none", "--unfreeze", "block5", "--data", data.path, "--size", "32x32", "--epochs", "1", "--augment"] + flags
        XCTAssertEqual(try run(common + ["--out", path("full")]).status, 0)
        let r = try run(common + ["--out", path("split")], env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "1:WAIT"], binary: faultHarnessBinary) { process in
            // Wait until the child has finished its first batch and waits, then signal it.
            XCTAssertTrue(process.read(until: "vggtl-test: waiting for a signal", timeout: childTimeLimit))
            process.signal(SIGTERM)
        }
        XCTAssertEqual(r.status, 143, r.output)
        XCTAssertTrue(r.output.contains("interrupted by SIGTERM in epoch 1 after batch 1 of 2"), r.output)
        XCTAssertEqual(try Checkpoint.load(url("split/last.json")).batchesDone, 1)
        XCTAssertEqual(try run(common + ["--out", path("split"), "--resume"]).status, 0)
        try assertSameRun("full", "split")
    }

    /// The tutorials' two-stage fine-tuning (head alone, then block5 at a tenth of the rate):
    /// interrupted in stage 1, resumed, interrupted again in stage 2, resumed: each resume
    /// continues in its stage, and the run ends as an uninterrupted one.
    func testTwoStageFinetuneResumesInTheStageItWasInterrupted() throws {
        let data = try writeImages("data", perClass: 2)
        var flags = headFlags
        flags[3] = "2"   // 4 images: 2 batches per epoch
        let common = ["finetune", "--weights", "none", "--unfreeze", "block5", "--head-epochs", "1", "--data", data.path,
                      "--size", "32x32", "--epochs", "1"] + flags
        XCTAssertEqual(try run(common + ["--out", path("full")]).status, 0)
        let first = try run(common + ["--out", path("split")], env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "1"], binary: faultHarnessBinary)
        XCTAssertEqual(first.status, 130, first.output)
        var saved = try Checkpoint.load(url("split/last.json"))
        XCTAssertEqual([saved.epoch, saved.batchesDone], [0, 1])
        XCTAssertEqual(saved.unfreeze, "none", "a stage-1 checkpoint trains the head only when resumed")
        // This process runs stage 1's second batch, then stage 2's first: interrupted there.
        let second = try run(common + ["--out", path("split"), "--resume"], env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "2"], binary: faultHarnessBinary)
        XCTAssertEqual(second.status, 130, second.output)
        saved = try Checkpoint.load(url("split/last.json"))
        XCTAssertEqual([saved.epoch, saved.batchesDone], [1, 1])
        XCTAssertEqual(saved.unfreeze, "block5")
        let resumed = try run(common + ["--out", path("split"), "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertTrue(resumed.output.contains("stage 2"), resumed.output)
        try assertSameRun("full", "split")
    }

    /// kill -9 in the middle of writing a checkpoint (after the arrays file, and after the new
    /// JSON is complete but before its rename) leaves the previous checkpoint loadable; the
    /// resumed run cleans up what the dead process left and ends as an uninterrupted run.
    func testKill9WhileWritingACheckpointLeavesThePreviousOneIntact() throws {
        let feat = try writeFeatures("feat")
        let common = ["train-top", "--features", feat, "--epochs", "3"] + headFlags
        XCTAssertEqual(try run(common + ["--out", path("full")]).status, 0)
        for point in ["checkpoint-arrays", "checkpoint-json"] {
            let run1 = "killed-\(point)"
            let r = try run(common + ["--out", path(run1)], env: ["VGGTL_TEST_CRASH_AT": "\(point):2"], binary: faultHarnessBinary)
            XCTAssertTrue(r.signaled, r.output)
            XCTAssertEqual(r.status, SIGKILL, r.output)
            let info = try Checkpoint.load(url("\(run1)/last.json"))
            XCTAssertEqual(info.epoch, 1, "the checkpoint of epoch 1 survives a kill while epoch 2's is written")
            XCTAssertNoThrow(try weights(run1))
            XCTAssertGreaterThan(files(in: run1).count, 4, "the dead process left its files: \(files(in: run1))")
            let resumed = try run(common + ["--out", path(run1), "--resume"])
            XCTAssertEqual(resumed.status, 0, resumed.output)
            try assertSameRun("full", run1)
            XCTAssertEqual(files(in: run1), ["curves.svg", "history.csv", "last.json", try Checkpoint.load(url("\(run1)/last.json")).weightsFile].sorted(),
                           "leftovers are removed")
        }
    }

    /// kill -9 at arbitrary moments of a run: whatever the moment, last.json is absent (nothing
    /// finished yet) or a complete checkpoint whose arrays load.
    func testKill9AtAnyMomentLeavesALoadableCheckpoint() throws {
        let feat = try writeFeatures("feat", rows: 200, width: 64)
        for (i, delay) in [0.05, 0.2, 0.35, 0.5, 0.8].enumerated() {
            let name = "run\(i)"
            let r = try run(["train-top", "--features", feat, "--out", path(name), "--epochs", "200", "--hidden", "256"] + headFlags) { process in
                usleep(UInt32(delay * 1_000_000))
                process.signal(SIGKILL)
            }
            XCTAssertTrue(r.signaled || r.status == 0, r.output)
            if FileManager.default.fileExists(atPath: path("\(name)/last.json")) {
                XCTAssertNoThrow(try weights(name), "after a kill at \(delay) s")
            }
        }
    }

    // MARK: - Numerics

    func testNaNLossStopsWithStepAndCauseAndKeepsTheLastGoodCheckpoint() throws {
        let feat = try writeFeatures("feat")
        let flags = ["--device", "cpu", "--batch", "8", "--hidden", "16", "--optimizer", "sgd", "--seed", "7"]
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1", "--lr", "0.01"] + flags).status, 0)
        let before = try Checkpoint.load(url("run/last.json"))
        let beforeWeights = try weights("run")
        let r = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--lr", "1e30", "--resume"] + flags)
        assertCleanError(r, ["loss became", "at epoch 2, batch", "step", "learning rate", "--lr", "last good checkpoint (end of epoch 1)", "--resume"])
        let after = try Checkpoint.load(url("run/last.json"))
        XCTAssertEqual(after.weightsFile, before.weightsFile)
        XCTAssertEqual(after.epoch, 1)
        XCTAssertEqual(try weights("run"), beforeWeights)

        let fresh = try run(["train-top", "--features", feat, "--out", path("fresh"), "--epochs", "2", "--lr", "1e30"] + flags)
        assertCleanError(fresh, ["loss became", "at epoch 1", "no checkpoint had been written yet"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("fresh/last.json")))
    }

    /// Weights that became NaN or infinite are never written as a checkpoint.
    func testNonFiniteWeightsAreNeverCheckpointed() throws {
        let config = ModelConfig(trunk: .none, inputShape: [1, 1, 4], headHidden: 3, headDropout: 0, classes: 2)
        let model = try Model(config, on: cpuDevice, seed: 1)
        let info = CheckpointInfo(model: config, classNames: ["a", "b"], input: InputSpec(height: 32, width: 32, preprocessing: .rescale),
                                  featureTrunk: nil, unfreeze: "all", optimizer: try OptimizerSpec(kind: .sgd, learningRate: 0.1),
                                  optimizerIterations: 0, schedule: .constant, epoch: 1, history: History(), seed: 1,
                                  dropoutSteps: [:], weightsFile: "")
        try Checkpoint.save(info, model: model, optimizer: nil, in: temp, name: "last")
        let good = try Checkpoint.load(url("last.json")).weightsFile
        let p = model.network.parameters[0].value
        var v = p.toArray(); v[1] = .nan
        v.withUnsafeBufferPointer { cpuDevice.write($0, to: p.buffer, offset: 0) }
        var next = info; next.epoch = 2
        XCTAssertThrowsError(try Checkpoint.save(next, model: model, optimizer: nil, in: temp, name: "last")) { e in
            XCTAssertTrue(cliMessage(e).contains(model.network.parameters[0].name) && cliMessage(e).contains("--lr"), cliMessage(e))
        }
        XCTAssertEqual(try Checkpoint.load(url("last.json")).weightsFile, good)
        XCTAssertEqual(files(in: ".").filter { $0.hasSuffix(".safetensors") }, [good])
    }

    // MARK: - Devices

    func testOpenCLAllocationBeyondTheDeviceLimitSuggestsABatchThatFits() throws {
        try requireOpenCL()
        let data = try writeImages("data", perClass: 12)
        // PoCL with a 1 GiB memory limit allows 256 MiB per buffer; block1_conv1's output for
        // 24 images at 224x224 is 294 MiB.
        let r = try run(["extract", "--device", "opencl", "--weights", "none", "--data", data.path, "--out", path("feat"),
                         "--size", "224x224", "--batch", "24"], env: ["POCL_MEMORY_LIMIT": "1"])
        assertCleanError(r, ["at --batch 24 it does not fit", "try --batch", "CL_DEVICE_MAX_MEM_ALLOC_SIZE"])
        let suggested = Int(r.output.components(separatedBy: "try --batch ")[1].prefix { $0.isNumber })!
        XCTAssertLessThan(suggested, 24)
        XCTAssertLessThanOrEqual(suggested * 224 * 224 * 64 * 4, 256 << 20, "the suggested batch fits the limit")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("feat/features.npy")))
    }

    func testKernelBuildFailureShowsTheBuildLog() throws {
        try requireOpenCL()
        let broken = "__kernel void broken(__global float *x) { x[get_global_id(0)] = undefined_thing_42; }"
        XCTAssertThrowsError(try OpenCLDevice.checkBuild(index: 0, file: "broken.cl", source: broken)) { e in
            guard case let .kernelBuild(file, _, log) = e as? VGGTLError else { return XCTFail("\(e)") }
            XCTAssertEqual(file, "Kernels/broken.cl")
            XCTAssertTrue(log.contains("undefined_thing_42"), log)
            XCTAssertTrue(cliMessage(e).contains("build log") && cliMessage(e).contains("--device cpu"), cliMessage(e))
        }
        XCTAssertNoThrow(try OpenCLDevice.checkBuild(index: 0, file: "fine.cl", source: "__kernel void fine(__global float *x) { x[0] = 1.0f; }"))
    }

    /// An OpenCL device that fails in the middle of a run (simulated by vggtl-faults' wrapping
    /// device: a call fails with CL_OUT_OF_RESOURCES, as a lost device's do): a clear error, no
    /// crash, the last checkpoint kept.
    func testDeviceLostMidRunIsAClearErrorAndKeepsTheCheckpoint() throws {
        try requireOpenCL()
        let feat = try writeFeatures("feat")
        var flags = headFlags
        flags[1] = "opencl"
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1"] + flags).status, 0)
        let before = try Checkpoint.load(url("run/last.json"))
        let r = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--resume"] + flags,
                        env: ["VGGTL_TEST_DEVICE_FAIL_AFTER": "60"], binary: faultHarnessBinary)
        assertCleanError(r, ["failed", "CL_OUT_OF_RESOURCES", "lost", "last good checkpoint (end of epoch 1)"])
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).weightsFile, before.weightsFile)
        XCTAssertNoThrow(try weights("run"))
    }

    /// The OpenCL device's own side of a lost device: the first failed call is kept, later work
    /// is skipped, reads give NaN, and checkHealthy throws that first failure.
    func testOpenCLDeviceKeepsItsFirstFailureSkipsWorkAndReadsNaN() throws {
        try requireOpenCL()
        let cl = try OpenCLDevice(index: 0)
        let x = try Tensor([1, -2, 3, -4], shape: [4], on: cl)
        XCTAssertNoThrow(try cl.checkHealthy())
        let outOfResources: Int32 = -5, invalidValue: Int32 = -30
        XCTAssertFalse(cl.orFail(outOfResources, "clEnqueueNDRangeKernel(test)"))
        cl.orFail(invalidValue, "a later call")
        cl.relu(x.buffer, x.buffer, count: 4)
        XCTAssertTrue(x.toArray().allSatisfy(\.isNaN))
        XCTAssertThrowsError(try cl.checkHealthy()) { e in
            XCTAssertEqual(e as? VGGTLError, .deviceFailed(device: cl.name, call: "clEnqueueNDRangeKernel(test)", code: outOfResources))
            XCTAssertTrue("\(e)".contains("CL_OUT_OF_RESOURCES") && "\(e)".contains("lost"), "\(e)")
        }
    }

    func testAutoFallsBackToTheCPUWhenTheOpenCLGPUFails() throws {
        let gpu = OpenCLDeviceInfo(index: 0, name: "Broken GPU", platform: "Test", type: .gpu, computeUnits: 1, globalMemoryBytes: 1 << 30,
                                   maxAllocationBytes: 1 << 28, maxWorkGroupSize: 256, driverVersion: "1", version: "OpenCL 1.2")
        var warnings: [String] = []
        let d = try DeviceChoice.openAuto([gpu], openOpenCL: { (_: Int) throws -> Device in
            throw VGGTLError.kernelBuild(file: "Kernels/conv.cl", device: "opencl:0", log: "error: bad thing")
        }, openCPU: { cpuDevice }, warn: { warnings.append($0) })
        XCTAssertEqual(d.kind, .cpu)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("Broken GPU") && warnings[0].contains("using the CPU") && warnings[0].contains("conv.cl"), warnings[0])
        // No GPU: the CPU, silently; an explicit --device opencl does not fall back.
        warnings = []
        XCTAssertEqual(try DeviceChoice.openAuto([], openOpenCL: { _ in XCTFail(); return cpuDevice }, openCPU: { cpuDevice },
                                                 warn: { warnings.append($0) }).kind, .cpu)
        XCTAssertEqual(warnings, [])
    }

    func testNoOpenCLDriverIsAClearErrorAndAutoUsesTheCPU() throws {
        let empty = url("no-icd")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let env = ["OCL_ICD_VENDORS": empty.path]
        let feat = try writeFeatures("feat")
        var flags = headFlags
        flags[1] = "opencl"
        assertCleanError(try run(["train-top", "--features", feat, "--out", path("cl"), "--epochs", "1"] + flags, env: env),
                         ["no OpenCL device found", "--device cpu"])
        flags[1] = "auto"
        let r = try run(["train-top", "--features", feat, "--out", path("auto"), "--epochs", "1"] + flags, env: env)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("device: cpu"), r.output)
    }

    // MARK: - Disk full

    /// Writes fail past a file-size limit (ulimit -f, EFBIG) as they do on a full disk: an error
    /// naming the file, nothing under the final name, no temporary file left.
    func testWriteFailureWhileWritingFeaturesLeavesNoFile() throws {
        let data = try writeImages("data", perClass: 12)
        let r = try run(["extract", "--device", "cpu", "--weights", "none", "--data", data.path, "--out", path("feat"), "--size", "32x32"],
                        shell: "ulimit -f 16; exec \"$VGGTL\"")
        assertCleanError(r, [path("feat/features.npy"), "too large", "free space"])
        XCTAssertEqual(files(in: "feat"), [], "no features.npy and no temporary file")
    }

    func testWriteFailureWhileWritingACheckpointKeepsThePreviousOne() throws {
        let feat = try writeFeatures("feat", width: 512)
        let flags = ["--device", "cpu", "--batch", "8", "--hidden", "256", "--seed", "7"]
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1"] + flags).status, 0)
        let before = try Checkpoint.load(url("run/last.json"))
        let beforeFiles = files(in: "run")
        let r = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "2", "--resume"] + flags,
                        shell: "ulimit -f 256; exec \"$VGGTL\"")
        assertCleanError(r, ["cannot write", ".safetensors", "too large", "last good checkpoint (end of epoch 1)"])
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).weightsFile, before.weightsFile)
        XCTAssertNoThrow(try weights("run"))
        XCTAssertEqual(files(in: "run"), beforeFiles, "no new or half-written file")
    }

    /// A real full disk: a 1 MiB tmpfs (needs root; skipped elsewhere).
    func testFullTmpfsWhileCheckpointingIsAnErrorWithNoHalfWrittenFile() throws {
        let mnt = url("small-disk")
        try FileManager.default.createDirectory(at: mnt, withIntermediateDirectories: true)
        guard let m = try? ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt.path], timeout: 30),
              !m.timedOut, !m.signaled, m.status == 0 else { throw XCTSkip("cannot mount a tmpfs here (not root?)") }
        defer { _ = try? ChildProcess.run("/bin/umount", [mnt.path], timeout: 30) }
        let feat = try writeFeatures("feat", width: 512)
        let r = try run(["train-top", "--features", feat, "--out", mnt.appendingPathComponent("run").path, "--epochs", "1",
                         "--device", "cpu", "--batch", "8", "--hidden", "512", "--seed", "7"])
        assertCleanError(r, ["cannot write", "No space left on device"])
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mnt.appendingPathComponent("run").path)) ?? []
        XCTAssertFalse(left.contains { $0.hasSuffix(".safetensors") || $0.contains(".tmp-") || $0 == "last.json" }, "\(left)")
    }

    // MARK: - Fuzzing findings (Fuzz/regressions: the inputs libFuzzer found)

    static var regressions: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions")
    }

    func regression(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: Self.regressions.appendingPathComponent(name)))
    }

    func peakRSSBytes() -> Int {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return u.ru_maxrss * 1024
    }

    /// An .npy header whose 4-byte length field says 2 GB: a truncation error, without first
    /// allocating the 2 GB (libFuzzer: out-of-memory).
    func testFuzzNPYHugeHeaderLengthIsATruncationErrorWithoutAllocating() throws {
        let u = url("bad.npy")
        try Data(try regression("npy-header-length-2gb.bin")).write(to: u)
        let before = peakRSSBytes()
        XCTAssertThrowsError(try NPY.read(u)) { e in
            XCTAssertTrue("\(e)".contains("truncated") && "\(e)".contains(u.path), "\(e)")
        }
        XCTAssertLessThan(peakRSSBytes() - before, 1 << 30, "no gigabyte allocation for a 132-byte file")
    }

    /// IDX dimensions whose product overflows Int (libFuzzer: an overflow trap), and images
    /// without pixels: errors that name the file.
    func testFuzzIDXOverflowingDimensionsAreAnError() throws {
        let bytes = try regression("idx-dimension-product-overflow.bin")
        let split = Int(bytes[0]) << 8 | Int(bytes[1])   // as the fuzz harness splits it
        let images = url("images-idx3-ubyte"), labels = url("labels-idx1-ubyte")
        try Data(bytes[2..<(2 + split)]).write(to: images)
        try Data(bytes[(2 + split)...]).write(to: labels)
        XCTAssertThrowsError(try IDX.load(images: images, labels: labels, classNames: [])) { e in
            XCTAssertTrue("\(e)".contains("impossibly large") && "\(e)".contains(images.path), "\(e)")
        }
        try Data([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]).write(to: images)
        try Data([0, 0, 8, 1, 0, 0, 0, 1, 0]).write(to: labels)
        XCTAssertThrowsError(try IDX.load(images: images, labels: labels, classNames: [])) { e in
            XCTAssertTrue("\(e)".contains("no pixels"), "\(e)")
        }
    }

    /// Damaged .h5 files on which Debian's libhdf5 1.10 crashes (SIGSEGV) or loops forever: the
    /// CLI reads .h5 files in a child process first, so these are errors that name the file.
    func testFuzzHDF5FilesThatBreakLibhdf5AreErrorsInTheCLI() throws {
        let segv = url("segv.h5"), loop = url("loop.h5")
        try Data(try regression("hdf5-libhdf5-segv-global-heap.h5")).write(to: segv)
        try Data(try regression("hdf5-libhdf5-endless-loop.h5")).write(to: loop)
        let env = ["VGGTL_HDF5_CHECK_SECONDS": "5"]
        assertCleanError(try run(["weights", "inspect", segv.path], env: env), [segv.path, "Keras HDF5", "HDF5 library crashes reading it"])
        assertCleanError(try run(["weights", "inspect", loop.path], env: env), [loop.path, "Keras HDF5", "HDF5 library did not finish"])
        // The first finding (ASan: SEGV in libhdf5's global heap; a normal build looped forever).
        let heap = url("heap.h5")
        try Data(try regression("hdf5-vlen-attribute-heap.h5")).write(to: heap)
        assertCleanError(try run(["weights", "inspect", heap.path], env: env), [heap.path, "Keras HDF5"])
        let data = try writeImages("data", perClass: 1)
        assertCleanError(try run(["finetune", "--device", "cpu", "--weights", segv.path, "--data", data.path, "--out", path("run")], env: env),
                         [segv.path, "HDF5 library crashes reading it"])
        // A sound file passes the check and reads as before.
        let good = url("good.h5")
        try KerasH5.write(WeightSet(tensors: [("dense/kernel", [2, 2], [1, 2, 3, 4])]), to: good)
        let r = try run(["weights", "inspect", good.path])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("dense/kernel"), r.output)
    }

    /// An attribute whose element count times string size overflows Int (libFuzzer: an overflow
    /// trap in our reader, not libhdf5's): an error, in-process.
    func testFuzzHDF5AttributeSizeOverflowIsAnError() throws {
        let u = url("overflow.h5")
        try Data(try regression("hdf5-attribute-string-size-overflow.h5")).write(to: u)
        for read in [{ _ = try KerasH5.read(u) }, { _ = try KerasH5.describe(u) }] {
            XCTAssertThrowsError(try read()) { e in
                XCTAssertTrue("\(e)".contains("more than the file can hold") && "\(e)".contains(u.path), "\(e)")
            }
        }
    }
}
