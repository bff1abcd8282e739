import XCTest
import Foundation
import VGGTL

/// Issue 12: no traps for a newcomer. Each case runs the real `vggtl` binary as a user coming
/// from PyTorch or Keras would: weight files of every common layout (written here, small
/// inputs), two-stage schedules, converted weights, run folders, the options --help offers.
final class NewcomerTests: BinaryTestCase {
    // MARK: - Weight files written here

    /// A random VGG16 trunk in Keras names and layouts; with BatchNorm statistics that are not
    /// the identity, so that dropping them would change the features.
    func kerasTrunk(bn: Bool = false, seed: UInt64 = 9) throws -> WeightSet {
        var rng = SeededGenerator(seed: seed)
        var set = weightSet(of: try VGG16.trunk(batchNorm: bn, on: cpuDevice, rng: &rng))
        var g = SeededGenerator(seed: seed &+ 1)
        for i in set.tensors.indices where set.tensors[i].name.contains("_bn") {
            let (lo, hi): (Float, Float) = set.tensors[i].name.hasSuffix("gamma") ? (0.5, 1.5) : set.tensors[i].name.hasSuffix("variance") ? (0.5, 2) : (-0.2, 0.2)
            set.tensors[i].values = set.tensors[i].values.map { _ in g.uniform(lo, hi) }
        }
        return set
    }

    /// The trunk as a torchvision state dict; `featuresOnly`: as saved from `model.features`
    /// (names "0.weight", ...); `classifier`: adds classifier.0/3/6 linears of these widths.
    func torchFile(_ name: String, _ keras: WeightSet, featuresOnly: Bool = false, classifier: [Int]? = nil) throws -> String {
        var set = try TorchVGG16.fromKeras(keras)
        if featuresOnly { set.tensors = set.tensors.map { (String($0.name.dropFirst("features.".count)), $0.shape, $0.values) } }
        if let widths = classifier {
            var inputs = 512   // a 32x32 input leaves 1x1x512 features
            for (k, out) in widths.enumerated() {
                set.tensors.append(("classifier.\(3 * k).weight", [out, inputs], randomArray(out * inputs, seed: UInt64(k + 1), range: -0.05...0.05)))
                set.tensors.append(("classifier.\(3 * k).bias", [out], randomArray(out, seed: UInt64(k + 11), range: -0.05...0.05)))
                inputs = out
            }
        }
        try WeightFile.save(set, to: url(name), format: .safetensors)
        return path(name)
    }

    func features(_ dir: String) throws -> (shape: [Int], values: [Float]) { try NPY.read(url(dir).appendingPathComponent("features.npy")) }

    func extract(_ weights: String, _ out: String, _ data: URL, _ extra: [String] = []) throws -> Result {
        try run(["extract", "--device", "cpu", "--weights", weights, "--data", data.path, "--out", path(out), "--size", "32x32"] + extra)
    }

    func ok(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertFalse(r.signaled || r.output.contains("Fatal error") || r.output.contains("Swift runtime failure"), r.output, file: file, line: line)
    }

    // MARK: - 1. PyTorch state dicts of the trunk alone, and wrong shapes

    func testTorchFeaturesOnlyStateDictWorksInEveryCommandAndWrongShapesNameTheTensor() throws {
        let data = try writeImages("data", perClass: 3)
        let keras = try kerasTrunk()
        try KerasH5.write(keras, to: url("keras.h5"))
        for (file, featuresOnly) in [("features.safetensors", true), ("prefixed.safetensors", false)] {
            let torch = try torchFile(file, keras, featuresOnly: featuresOnly)
            let inspect = try run(["weights", "inspect", torch])
            ok(inspect)
            XCTAssertTrue(inspect.output.contains("26 match VGG16's names and shapes"), inspect.output)
            ok(try run(["weights", "convert", torch, path("\(file).h5")]))
            ok(try extract(torch, "feat-\(file)", data, ["--preprocess", "caffe"]))
        }
        // The same weights through Keras names give the same features.
        ok(try extract(path("keras.h5"), "feat-keras", data))
        XCTAssertEqual(try features("feat-keras").values, try features("feat-features.safetensors").values)
        XCTAssertEqual(try features("feat-keras").values, try features("feat-prefixed.safetensors").values)
        ok(try run(["finetune", "--device", "cpu", "--weights", path("features.safetensors"), "--data", data.path, "--out", path("ft"),
                    "--size", "32x32", "--epochs", "1", "--batch", "6", "--hidden", "8"]))

        // features.0.weight [64, 4, 3, 3]: one line that names the tensor and both shapes.
        var wrong = try TorchVGG16.fromKeras(keras)
        let i = wrong.tensors.firstIndex { $0.name == "features.0.weight" }!
        wrong.tensors[i] = ("features.0.weight", [64, 4, 3, 3], randomArray(64 * 4 * 9, seed: 3))
        try WeightFile.save(wrong, to: url("wrong.safetensors"), format: .safetensors)
        for args in [["extract", "--weights", path("wrong.safetensors"), "--data", data.path, "--out", path("x"), "--size", "32x32"],
                     ["finetune", "--weights", path("wrong.safetensors"), "--data", data.path, "--out", path("y"), "--size", "32x32"]] {
            assertCleanError(try run(args + ["--device", "cpu"]), ["features.0.weight", "[64,4,3,3]", "[64,3,3,3]"])
        }
        let inspect = try run(["weights", "inspect", path("wrong.safetensors")])
        ok(inspect)
        XCTAssertTrue(inspect.output.contains("features.0.weight") && inspect.output.contains("but VGG16 has [3, 3, 3, 64]"), inspect.output)
    }

    // MARK: - 2. A full state dict whose head does not fit the task

    func testAHeadThatDoesNotFitStartsFreshWithOneLineAndStrictWeightsStops() throws {
        let data = try writeImages("data", perClass: 2, classes: ["a", "b", "c"])
        let keras = try kerasTrunk()
        let torch = try torchFile("full.safetensors", keras, classifier: [64, 64, 10])
        let r = try run(["finetune", "--device", "cpu", "--weights", torch, "--data", data.path, "--out", path("ft"), "--size", "32x32",
                         "--epochs", "1", "--batch", "6", "--hidden", "8"])
        ok(r)
        let notes = r.output.split(separator: "\n").filter { $0.contains("does not fit") }
        XCTAssertEqual(notes.count, 1, r.output)
        XCTAssertTrue(notes.first?.contains("classifier.6.weight [10,64], the model has [3,8]") == true, r.output)
        XCTAssertTrue(notes.first?.contains("the trunk loaded, the head starts fresh") == true, r.output)
        // The trunk is the file's (block1-4 stay frozen).
        let trained = try weights("ft")
        XCTAssertEqual(trained["block1_conv1/kernel"], keras["block1_conv1/kernel"]!.values)
        XCTAssertEqual(trained["block4_conv3/bias"], keras["block4_conv3/bias"]!.values)
        assertCleanError(try run(["finetune", "--device", "cpu", "--weights", torch, "--data", data.path, "--out", path("strict"),
                                  "--size", "32x32", "--epochs", "1", "--strict-weights"]), ["--strict-weights", "classifier.6.weight", "does not fit"])
    }

    // MARK: - 3. BatchNorm weights without --bn

    func testBatchNormWeightsBuildTheBatchNormTrunkAndNeverDropItsTensors() throws {
        let data = try writeImages("data", perClass: 2)
        let bn = try kerasTrunk(bn: true)
        let torch = try torchFile("vgg16_bn.safetensors", bn, featuresOnly: true)
        try KerasH5.write(bn, to: url("bn.h5"))
        let auto = try extract(torch, "auto", data, ["--preprocess", "caffe"])
        ok(auto)
        XCTAssertEqual(auto.output.split(separator: "\n").filter { $0.contains("BatchNorm tensors found: building the VGG16-BN trunk") }.count, 1, auto.output)
        ok(try extract(torch, "flag", data, ["--preprocess", "caffe", "--bn"]))
        let keras = try extract(path("bn.h5"), "keras", data)
        ok(keras)
        XCTAssertTrue(keras.output.contains("BatchNorm tensors found"), keras.output)
        let expected = try features("flag").values
        XCTAssertEqual(try features("auto").values, expected)
        XCTAssertEqual(try features("keras").values, expected)
        let info = try JSONDecoder().decode([String: AnyDecodable].self, from: Data(contentsOf: url("auto/features.json")))
        XCTAssertEqual(info["trunk"]?.text, "vgg16-bn")
        // The trunk with BatchNorm really differs from the same convolutions without it.
        let plain = WeightSet(tensors: bn.tensors.filter { !$0.name.contains("_bn") })
        try KerasH5.write(plain, to: url("plain.h5"))
        ok(try extract(path("plain.h5"), "plain", data))
        XCTAssertNotEqual(try features("plain").values, expected)
        // --bn on weights without BatchNorm has nothing to load into the BatchNorm layers.
        assertCleanError(try extract(path("plain.h5"), "x", data, ["--bn"]), ["--bn", "no BatchNorm tensors"])
        // Below the CLI, a BatchNorm file loaded into a model without BatchNorm is an error, not a silent drop.
        var rng = SeededGenerator(seed: 1)
        let trunk = try VGG16.trunk(batchNorm: false, on: cpuDevice, rng: &rng)
        XCTAssertThrowsError(try loadWeights(bn, into: trunk)) { XCTAssertTrue("\($0)".contains("BatchNorm"), "\($0)") }
    }

    // MARK: - 4. Two-stage fine-tuning with a schedule

    func testTwoStageFinetuneGivesStageTwoItsOwnScheduleAndItTrains() throws {
        let data = try writeImages("data", perClass: 3)
        let keras = try kerasTrunk()
        try KerasH5.write(keras, to: url("trunk.h5"))
        let r = try run(["finetune", "--device", "cpu", "--weights", path("trunk.h5"), "--data", data.path, "--val", data.path,
                         "--out", path("ft"), "--size", "32x32", "--head-epochs", "2", "--epochs", "2", "--schedule", "cosine",
                         "--lr", "1e-2", "--batch", "6", "--hidden", "8"])
        ok(r)
        let csv = try String(contentsOf: url("ft/history.csv"), encoding: .utf8).split(separator: "\n").dropFirst()
        let lr = csv.map { Double($0.split(separator: ",", omittingEmptySubsequences: false)[5])! }
        // Stage 1: cosine over 2 epochs from 1e-2; stage 2: cosine over its own 2 epochs from 1e-3.
        XCTAssertEqual(lr.count, 4, "\(csv)")
        for (got, want) in zip(lr, [1e-2, 5e-3, 1e-3, 5e-4]) { XCTAssertEqual(got, want, accuracy: want * 1e-4, "\(csv)") }
        // Stage 2 trains block5 (frozen in stage 1); block4 stays as loaded.
        let trained = try weights("ft")
        XCTAssertNotEqual(trained["block5_conv3/kernel"], keras["block5_conv3/kernel"]!.values, "stage 2 changed block5")
        XCTAssertEqual(trained["block4_conv3/kernel"], keras["block4_conv3/kernel"]!.values)
    }

    // MARK: - 5. Preprocessing, BatchNorm and size travel with converted weights

    func testConvertedWeightsCarryPreprocessingAndSizeAndGiveTheSameFeatures() throws {
        let data = try writeImages("data", perClass: 2)
        try KerasH5.write(try kerasTrunk(), to: url("keras.h5"))
        let convert = try run(["weights", "convert", path("keras.h5"), path("keras.safetensors")])
        ok(convert)
        XCTAssertTrue(convert.output.contains("vggtl.preprocessing=caffe"), convert.output)
        let inspect = try run(["weights", "inspect", path("keras.safetensors")])
        XCTAssertTrue(inspect.output.contains("meta     vggtl.preprocessing = caffe") && inspect.output.contains("vggtl.trunk = vgg16"), inspect.output)
        let fromH5 = try extract(path("keras.h5"), "h5", data)
        let fromST = try extract(path("keras.safetensors"), "st", data)
        ok(fromH5); ok(fromST)
        XCTAssertTrue(fromST.output.contains("preprocessing caffe (from the file's metadata)"), fromST.output)
        XCTAssertEqual(try features("st").values, try features("h5").values)
        // Torch names and back to HDF5: the metadata survives both hops; a recorded size is the default.
        ok(try run(["weights", "convert", path("keras.safetensors"), path("torch.safetensors"), "--naming", "torch", "--size", "64x64"]))
        ok(try run(["weights", "convert", path("torch.safetensors"), path("back.h5")]))
        let back = try run(["extract", "--device", "cpu", "--weights", path("back.h5"), "--data", data.path, "--out", path("back")])
        ok(back)
        XCTAssertEqual(try features("back").shape, [4, 2, 2, 512], "64x64 from the file's metadata")
        let info = try JSONDecoder().decode([String: AnyDecodable].self, from: Data(contentsOf: url("back/features.json")))
        XCTAssertTrue(info["input"]?.text?.contains("caffe") == true, "\(String(describing: info["input"]))")
    }

    // MARK: - 6, 7, 8. Run folders: extract from them, evaluate and predict say which checkpoint

    func testRunFoldersFeedExtractAndEvaluatePredictNameTheirCheckpoint() throws {
        let data = try writeImages("data", perClass: 3)
        ok(try run(["train", "--device", "cpu", "--model", "vgg16-bn", "--data", data.path, "--val", data.path, "--out", path("run"),
                    "--size", "48x48", "--epochs", "2", "--batch", "6", "--hidden", "8", "--seed", "3"]))
        // 6. The run's trunk with its size (48x48 -> 1x1), preprocessing (rescale) and BatchNorm.
        let ex = try run(["extract", "--device", "cpu", "--weights", path("run"), "--data", data.path, "--out", path("feat")])
        ok(ex)
        XCTAssertTrue(ex.output.contains("BatchNorm tensors found: building the VGG16-BN trunk"), ex.output)
        XCTAssertTrue(ex.output.contains("preprocessing rescale (from the run's checkpoint best.json)"), ex.output)
        let info = try JSONDecoder().decode([String: AnyDecodable].self, from: Data(contentsOf: url("feat/features.json")))
        XCTAssertEqual(info["trunk"]?.text, "vgg16-bn")
        XCTAssertTrue(info["input"]?.text?.contains("48") == true && info["input"]?.text?.contains("rescale") == true, "\(String(describing: info["input"]))")
        // The features are the run's own trunk on these images.
        let (_, model) = try Checkpoint.imageModel(runDir: url("run"), on: cpuDevice)
        let trunk = Sequential(model.layers.filter { VGG16.block(of: $0.name) != nil })
        let loader = BatchLoader(source: try ClassFolderSource(directory: data), batchSize: 6, input: InputSpec(height: 48, width: 48, preprocessing: .rescale), shuffle: false, seed: 0)
        var expected: [Float] = []
        for b in loader.batches(epoch: 0) { expected += try trunk.forward(try Tensor(b.x, shape: [b.count, 48, 48, 3], on: cpuDevice), .inference).toArray() }
        assertClose(try features("feat").values, expected, tol: 1e-5, "features from the run folder")
        // A head on these features goes back onto the run's trunk for images.
        ok(try run(["train-top", "--device", "cpu", "--features", path("feat"), "--out", path("top"), "--epochs", "2", "--batch", "6", "--hidden", "8"]))
        ok(try run(["evaluate", "--device", "cpu", "--model", path("top"), "--data", data.path]))

        // 7. Which checkpoint, and JSON for scripts.
        let best = try Checkpoint.load(url("run/best.json"))
        let e = try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", data.path])
        ok(e)
        XCTAssertTrue(e.output.contains("run/best.json (the epoch with the lowest val_loss): epoch \(best.epoch)"), e.output)
        let last = try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", data.path, "--checkpoint", "last"])
        XCTAssertTrue(last.output.contains("run/last.json (the last epoch): epoch 2"), last.output)
        let json = try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", data.path, "--checkpoint", "last", "--json"])
        ok(json)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as! [String: Any]
        XCTAssertEqual(object["checkpoint"] as? String, "last")
        XCTAssertEqual(object["epoch"] as? Int, 2)
        XCTAssertEqual(object["images"] as? Int, 6)
        XCTAssertEqual((object["confusion"] as? [[Int]])?.joined().reduce(0, +), 6)
        assertCleanError(try run(["evaluate", "--device", "cpu", "--model", path("top"), "--data", data.path, "--checkpoint", "best"]), ["best.json", "--checkpoint last"])

        // 8. A folder with a trailing slash, an unreadable file in the middle, output piped.
        let photos = url("photos")
        try FileManager.default.createDirectory(at: photos, withIntermediateDirectories: true)
        try ImageCodec.writeJPEG(noiseImage(width: 40, height: 40, seed: 1, red: true), to: photos.appendingPathComponent("a.jpg"))
        try Data("not a jpeg".utf8).write(to: photos.appendingPathComponent("b.jpg"))
        try ImageCodec.writeJPEG(noiseImage(width: 40, height: 40, seed: 2, red: false), to: photos.appendingPathComponent("c.jpg"))
        let p = try run(["predict", "--device", "cpu", "--model", path("run"), "--top", "1", photos.path + "/"])
        ok(p)
        XCTAssertFalse(p.output.contains("//"), p.output)
        let lines = p.output.split(separator: "\n").map(String.init)
        let ia = lines.firstIndex { $0.hasPrefix(photos.path + "/a.jpg: ") }, ib = lines.firstIndex { $0.contains("skipped \(photos.path)/b.jpg") }
        let ic = lines.firstIndex { $0.hasPrefix(photos.path + "/c.jpg: ") }
        XCTAssertNotNil(ia); XCTAssertNotNil(ib); XCTAssertNotNil(ic)
        if let ia, let ib, let ic { XCTAssertTrue(ia < ib && ib < ic, "stdout and stderr in the order written:\n\(p.output)") }
        XCTAssertTrue(lines.first?.contains("using") == true && lines.first?.contains("best.json") == true, p.output)
        let pj = try run(["predict", "--device", "cpu", "--model", path("run"), "--top", "2", "--json", photos.path])
        let pred = try JSONSerialization.jsonObject(with: Data(pj.output.split(separator: "\n").filter { !$0.hasPrefix("warning") }.joined(separator: "\n").utf8)) as! [String: Any]
        XCTAssertEqual((pred["predictions"] as? [[String: Any]])?.count, 2)
        XCTAssertEqual((pred["skipped"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual(pred["checkpoint"] as? String, "best")
    }

    // MARK: - 9. Help, version, summary, flags

    func testHelpShowsEachCommandsDefaultsAndVersionAndBareTrunkSummary() throws {
        func help(_ args: [String]) throws -> String { try run(args + ["--help"]).output.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let finetune = try help(["finetune"])
        for needle in ["(default: sgd)", "(default: 0.0001)", "150x150", "chosen from the weights", "(default: block5, conv5, mixed9 or freeze-first:100)"] {
            XCTAssertTrue(finetune.contains(needle), "finetune --help lacks \(needle):\n\(finetune)")
        }
        let train = try help(["train"])
        for needle in ["(default: adam)", "(default: 0.001)", "(default: 32x32)", "(default: rescale)"] {
            XCTAssertTrue(train.contains(needle), "train --help lacks \(needle):\n\(train)")
        }
        let top = try help(["train-top"])
        XCTAssertTrue(top.contains("(default: rmsprop)") && top.contains("(default: 0.001)") && top.contains("--strict"), top)
        XCTAssertTrue(try help(["extract"]).contains("chosen from the weights"))
        let version = try run(["--version"])
        ok(version)
        XCTAssertTrue(version.output.hasPrefix("vggtl \(VGGTLVersion.current)"), version.output)
        let bare = try run(["summary", "--no-head"]).output
        XCTAssertTrue(bare.contains("Total params: 14,714,688") && !bare.contains("predictions") && bare.contains("block5_pool"), bare)
        XCTAssertTrue(try run(["summary"]).output.contains("predictions"))
        // weights does not list options it has no use for, and still accepts them before it.
        for args in [["weights", "--help"], ["weights", "inspect", "--help"], ["weights", "convert", "--help"]] {
            let h = try run(args).output
            XCTAssertFalse(h.contains("--device") || h.contains("--seed") || h.contains("--threads"), h)
        }
        try KerasH5.write(WeightSet(tensors: [("block1_conv1/bias", [64], randomArray(64, seed: 1))]), to: url("w.h5"))
        ok(try run(["--threads", "1", "weights", "inspect", path("w.h5")]))
        // demo --help and the README agree on the demo's time budget.
        let demo = try help(["demo"])
        XCTAssertTrue(demo.contains("within 10 minutes on 2 CPU cores"), demo)
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.split(whereSeparator: \.isWhitespace).joined(separator: " ").contains("within 10 minutes on 2 CPU cores"), "README and demo --help disagree")
    }

    func testFlagsThatCannotWorkAreErrorsAndHintsNameFlags() throws {
        let feat = try writeFeatures("feat")
        // --early-stopping needs validation data.
        assertCleanError(try run(["train-top", "--features", feat, "--out", path("es"), "--epochs", "3", "--early-stopping", "2"] + headFlags),
                         ["--early-stopping", "validation"])
        ok(try run(["train-top", "--features", feat, "--out", path("es2"), "--epochs", "3", "--early-stopping", "2", "--val-split", "0.25"] + headFlags))
        // train-top --strict: features of unknown origin (no features.json) are an error instead of a warning.
        let warned = try run(["train-top", "--features", feat, "--out", path("t1"), "--epochs", "1"] + headFlags)
        ok(warned)
        XCTAssertTrue(warned.output.contains("warning:") && warned.output.contains("features.json"), warned.output)
        assertCleanError(try run(["train-top", "--features", feat, "--out", path("t2"), "--epochs", "1", "--strict"] + headFlags),
                         ["--strict", "features.json"])
        // Missing trunk weights: the hint names the flag, and the flag works.
        let data = try writeImages("data", perClass: 1)
        var partial = try kerasTrunk()
        partial.tensors.removeAll { $0.name.hasPrefix("block5") }
        try KerasH5.write(partial, to: url("partial.h5"))
        assertCleanError(try extract(path("partial.h5"), "p1", data), ["block5_conv1/kernel", "--allow-missing-weights"])
        let allowed = try extract(path("partial.h5"), "p2", data, ["--allow-missing-weights"])
        ok(allowed)
        XCTAssertTrue(allowed.output.contains("warning:") && allowed.output.contains("random values"), allowed.output)
        // --val-limit, and the validation progress bar on a terminal.
        let fashion = "/usr/share/datasets/fashion-mnist"
        guard FileManager.default.fileExists(atPath: fashion + "/t10k-labels-idx1-ubyte.gz") else { throw XCTSkip("no Fashion-MNIST") }
        let quick = try run(["train", "--device", "cpu", "--data", "fashion-mnist", "--limit", "16", "--val-limit", "40", "--epochs", "1",
                             "--batch", "8", "--hidden", "8", "--out", path("quick")])
        ok(quick)
        XCTAssertTrue(quick.output.contains("training on 16 images in 10 classes, validating on 40"), quick.output)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("no script(1) for a terminal") }
        let command = (["$VGGTL", "train-top", "--features", feat, "--out", path("tty"), "--epochs", "1", "--val-split", "0.5"] + headFlags)
            .map { $0.hasPrefix("$") ? $0 : "'\($0)'" }.joined(separator: " ")
        let tty = try run([], shell: "/usr/bin/script -qec \"\(command)\" /dev/null")
        XCTAssertTrue(tty.output.contains("\rvalidation 1/"), tty.output)
    }

    // MARK: - 10. Augmentation presets and overrides

    func testAugmentationPresetsAndIndividualOverrides() throws {
        let data = try writeImages("data", perClass: 2)
        let common = ["train", "--device", "cpu", "--data", data.path, "--epochs", "1", "--batch", "4", "--hidden", "8"]
        for (flags, line) in [(["--augment"], "augmentation: rotation 40.0, shift 0.2, shear 0.2, zoom 0.2, flip"),
                              (["--augment", "cifar"], "augmentation: flip, pad-crop 4 px"),
                              (["--augment", "keras", "--rotation", "10", "--no-flip"], "augmentation: rotation 10.0, shift 0.2, shear 0.2, zoom 0.2\n"),
                              (["--augment", "cifar", "--pad-crop", "2", "--shift", "0.1"], "augmentation: shift 0.1, flip, pad-crop 2 px"),
                              (["--flip"], "augmentation: flip\n")] {
            let r = try run(common + flags + ["--out", path("aug\(flags.joined())")])
            ok(r)
            XCTAssertTrue(r.output.contains(line), "\(flags): \(r.output)")
        }
        assertCleanError(try run(common + ["--augment", "imagenet", "--out", path("bad")]), ["--augment", "'keras', 'cifar' or 'none'"])
        // Pad-crop moves the content by the drawn offset and fills with black.
        let image = RGBImage(width: 3, height: 2, pixels: (1...18).map { UInt8($0) })
        let moved = Augmentation.apply(.init(cropRows: 1, cropColumns: -1), to: image)
        XCTAssertEqual(moved.pixels, [0, 0, 0, 10, 11, 12, 13, 14, 15] + [0, 0, 0, 0, 0, 0, 0, 0, 0])
        var g = SeededGenerator(seed: 4)
        for _ in 0..<50 {
            let t = Augmentation.cifar.randomTransform(height: 32, width: 32, rng: &g)
            XCTAssertTrue((-4...4).contains(t.cropRows) && (-4...4).contains(t.cropColumns) && t.rotation == 0)
        }
    }

    // MARK: - 11. The Keras cache is checked

    func testADamagedCachedImageNetFileIsAnErrorThatSaysWhatToDelete() throws {
        let data = try writeImages("data", perClass: 1)
        let cache = url("keras/models")
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let file = cache.appendingPathComponent(ImageNetWeights.fileName(includeTop: false))
        try Data(randomArray(1000, seed: 5).map { UInt8(truncatingIfNeeded: Int($0 * 1000)) }).write(to: file)
        let r = try run(["extract", "--device", "cpu", "--weights", "imagenet", "--data", data.path, "--out", path("f")], env: ["KERAS_HOME": path("keras")])
        assertCleanError(r, [file.path, "MD5", ImageNetWeights.md5(includeTop: false), "Delete it", "rm '\(file.path)'"])
    }

    // MARK: - The demo

    func testDemoRunsSeveralSeedsAndWritesTheResultsTable() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz") else { throw XCTSkip("no Fashion-MNIST") }
        let r = try run(["demo", "--device", "cpu", "--out", path("demo"), "--source-images", "20", "--source-epochs", "1", "--per-class", "2",
                         "--seeds", "2", "--head-epochs", "2", "--finetune-epochs", "1", "--scratch-epochs", "1", "--val-per-class", "2",
                         "--test-per-class", "4", "--batch", "8"])
        ok(r)
        let results = try String(contentsOf: url("demo/results.md"), encoding: .utf8)
        for needle in ["jump start (epoch 1)", "final accuracy", "time to 60%", "time to 85%", "(a) bottleneck features + head |", "(c) same network from scratch |", "±"] {
            XCTAssertTrue(results.contains(needle), "results.md lacks \(needle):\n\(results)")
        }
        XCTAssertEqual(results.components(separatedBy: "Per seed")[1].components(separatedBy: "%,").count, 4, results)
    }
}

/// A JSON value read back loosely: strings as they are, anything else as its JSON text.
struct AnyDecodable: Decodable {
    var text: String?
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { text = s; return }
        if let d = try? c.decode([String: AnyDecodable].self) { text = d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text ?? "")" }.joined(separator: ",") ; return }
        if let n = try? c.decode(Double.self) { text = "\(n)"; return }
        text = nil
    }
}
