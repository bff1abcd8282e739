import XCTest
import Foundation
import VGGTL

/// Every command end to end through the real `vggtl` binary, on a small class-folder dataset of
/// JPEGs written here: a learnable task (red-ish vs blue-ish noise), so training must reach high
/// accuracy; resume must equal an uninterrupted run; classes follow sorted folder names.
final class CommandTests: VGGTLTestCase {
    /// The dataset, written once by setUp for the class (one test at a time: see cpuDevice).
    nonisolated(unsafe) static var data: URL!
    var temp: URL!

    static var binary: URL { vggtlBinary }

    @discardableResult
    func vggtl(_ args: [String], fails: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try ChildProcess(Self.binary.path, args, ownProcessGroup: true).wait(timeout: childTimeLimit)
        let text = r.text
        XCTAssertFalse(r.timedOut, "vggtl \(args.joined(separator: " ")) still ran after \(Int(childTimeLimit)) s", file: file, line: line)
        if fails {
            XCTAssertTrue(r.status != 0 || r.signaled, "vggtl \(args.joined(separator: " ")) should fail\n\(text)", file: file, line: line)
        } else {
            XCTAssertTrue(r.status == 0 && !r.signaled, "vggtl \(args.joined(separator: " "))\n\(text)", file: file, line: line)
        }
        return text
    }

    /// Class folders deliberately created out of order and with mixed case and a space.
    static let classes = ["blue sky", "Red"]

    override class func setUp() {
        super.setUp()
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-cmd-\(UUID().uuidString)")
        data = root.appendingPathComponent("data")
        var g = SeededGenerator(seed: 3)
        for (c, name) in classes.reversed().enumerated() {
            let dir = data.appendingPathComponent(name)
            try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<12 {
                var px = [UInt8]()
                for _ in 0..<(40 * 36) {
                    let base = Int(g.next() % 120)
                    // "Red": red dominant; "blue sky": blue dominant.
                    let strong = UInt8(120 + base), weak = UInt8(base / 2)
                    px += c == 0 ? [strong, weak, weak] : [weak, weak, strong]
                }
                try! ImageCodec.writeJPEG(RGBImage(width: 40, height: 36, pixels: px), to: dir.appendingPathComponent(String(format: "img%02d.jpg", i)))
            }
        }
    }

    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    func path(_ name: String) -> String { temp.appendingPathComponent(name).path }

    /// A small random VGG16 trunk in Keras layout, standing in for ImageNet weights.
    func trunkWeights() throws -> String {
        var rng = SeededGenerator(seed: 9)
        let layers = try VGG16.trunk(batchNorm: false, on: CPUDevice(), rng: &rng)
        let url = temp.appendingPathComponent("trunk.h5")
        try KerasH5.write(weightSet(of: layers), to: url)
        return url.path
    }

    func testExtractThenTrainTopLearnsAndCachesFeatures() throws {
        let weights = try trunkWeights()
        let out = try vggtl(["extract", "--device", "cpu", "--weights", weights, "--data", Self.data.path, "--out", path("feat"), "--size", "32x32", "--batch", "5"])
        XCTAssertTrue(out.contains("24 images in 2 classes"), out)
        // Every image gets its features, in order, although 24 is not a multiple of the batch.
        let f = try NPY.read(temp.appendingPathComponent("feat/features.npy"))
        XCTAssertEqual(f.shape, [24, 1, 1, 512])
        let labels = try NPY.read(temp.appendingPathComponent("feat/labels.npy")).values
        XCTAssertEqual(labels, [Float](repeating: 0, count: 12) + [Float](repeating: 1, count: 12))
        let classes = try JSONDecoder().decode([String].self, from: Data(contentsOf: temp.appendingPathComponent("feat/classes.json")))
        XCTAssertEqual(classes, ["Red", "blue sky"], "classes are the folder names sorted as Python sorts them")
        let again = try vggtl(["extract", "--device", "cpu", "--weights", weights, "--data", Self.data.path, "--out", path("feat"), "--size", "32x32"])
        XCTAssertTrue(again.contains("reused"), again)

        try vggtl(["train-top", "--device", "cpu", "--features", path("feat"), "--out", path("top"), "--epochs", "30", "--batch", "8", "--lr", "1e-3", "--val-split", "0.25"])
        let history = try String(contentsOf: temp.appendingPathComponent("top/history.csv"), encoding: .utf8)
        let last = history.split(separator: "\n").last!.split(separator: ",", omittingEmptySubsequences: false)
        XCTAssertGreaterThanOrEqual(Double(last[2])!, 0.9, "train accuracy\n\(history)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("top/curves.svg")))
        // The head goes back on its trunk for images: evaluate and predict use the features' preprocessing.
        let report = try vggtl(["evaluate", "--device", "cpu", "--model", path("top"), "--data", Self.data.path])
        XCTAssertTrue(report.contains("confusion matrix"), report)
        XCTAssertTrue(report.contains("top/best.json (the epoch with the lowest val_loss): epoch "), report)
        let accuracyLine = report.split(separator: "\n").first { $0.hasPrefix("accuracy: ") } ?? ""
        let acc = Double(accuracyLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(acc, 0.9, report)
        let pred = try vggtl(["predict", "--device", "cpu", "--model", path("top"), "--top", "1", Self.data.appendingPathComponent("Red/img00.jpg").path])
        XCTAssertTrue(pred.contains("img00.jpg: Red "), pred)
    }

    func testFinetuneLearnsAndFrozenTrunkStaysBitIdentical() throws {
        let weights = try trunkWeights()
        try vggtl(["--device", "cpu", "finetune", "--weights", weights, "--data", Self.data.path, "--val", Self.data.path, "--out", path("ft"),
                   "--size", "32x32", "--unfreeze", "block5", "--epochs", "6", "--batch", "8", "--optimizer", "adam", "--lr", "1e-3",
                   "--hidden", "32", "--augment", "--tensorboard", path("tb")])
        let info = try Checkpoint.load(temp.appendingPathComponent("ft/best.json"))
        XCTAssertEqual(info.classNames, ["Red", "blue sky"])
        XCTAssertEqual(info.input, InputSpec(height: 32, width: 32, preprocessing: .caffe))
        XCTAssertGreaterThanOrEqual(info.history.records.compactMap(\.valAccuracy).max()!, 0.9, "\(info.history.csv)")
        let trained = try WeightFile.load(temp.appendingPathComponent("ft/" + info.weightsFile))
        let original = try WeightFile.load(URL(fileURLWithPath: weights))
        for name in original.names {
            let block = VGG16.block(of: name)!
            if block < 5 { XCTAssertEqual(trained[name]!.values, original[name]!.values, "\(name) is frozen") }
            else if name.hasSuffix("kernel") { XCTAssertNotEqual(trained[name]!.values, original[name]!.values, "\(name) trains") }
        }
        let events = try FileManager.default.contentsOfDirectory(atPath: path("tb/train"))
        XCTAssertEqual(events.filter { $0.hasPrefix("events.out.tfevents.") }.count, 1)
    }

    func testResumeEqualsUninterruptedRun() throws {
        let common = ["--device", "cpu", "--data", Self.data.path, "--size", "32x32", "--batch", "8", "--hidden", "16",
                      "--optimizer", "adam", "--lr", "1e-3", "--seed", "5", "--limit", "16"]
        try vggtl(["train"] + common + ["--out", path("full"), "--epochs", "2"])
        try vggtl(["train"] + common + ["--out", path("split"), "--epochs", "1"])
        let resumed = try vggtl(["train"] + common + ["--out", path("split"), "--epochs", "2", "--resume"])
        XCTAssertTrue(resumed.contains("resuming"), resumed)
        let a = try Checkpoint.load(temp.appendingPathComponent("full/last.json"))
        let b = try Checkpoint.load(temp.appendingPathComponent("split/last.json"))
        XCTAssertEqual(a.epoch, 2); XCTAssertEqual(b.epoch, 2)
        XCTAssertEqual(a.history.records.map(\.loss), b.history.records.map(\.loss))
        let wa = try WeightFile.load(temp.appendingPathComponent("full/" + a.weightsFile))
        let wb = try WeightFile.load(temp.appendingPathComponent("split/" + b.weightsFile))
        XCTAssertEqual(wa.names, wb.names)
        for name in wa.names { XCTAssertEqual(wa[name]!.values, wb[name]!.values, "\(name) after resume") }
    }

    /// ResNet50 and InceptionV3 through the commands with random weights: train, resume,
    /// evaluate and predict rebuild the backbone from the checkpoint; extract and train-top;
    /// fine-tuning with Keras' layer cut; summary numbers Keras' layers.
    func testResNet50AndInceptionV3Commands() throws {
        let summary = try vggtl(["summary", "--model", "resnet50", "--include-top", "--freeze-first", "168"])
        XCTAssertTrue(summary.contains("Total params: 25,636,712"), summary)
        XCTAssertTrue(summary.contains("168   conv5_block3_2_conv (Conv2D)"), summary)
        XCTAssertTrue(summary.contains("include_top=False): 175 layers with the InputLayer, 23,587,712 params"), summary)
        let inception = try vggtl(["summary", "--model", "inceptionv3", "--include-top"])
        XCTAssertTrue(inception.contains("Total params: 23,851,784") && inception.contains("248   mixed8 (Concatenate)"), inception)

        let common = ["--device", "cpu", "--data", Self.data.path, "--size", "32x32", "--batch", "8", "--hidden", "16", "--seed", "3"]
        try vggtl(["train", "--model", "resnet50"] + common + ["--out", path("r"), "--epochs", "1", "--optimizer", "sgd", "--lr", "1e-2"])
        let info = try Checkpoint.load(temp.appendingPathComponent("r/last.json"))
        XCTAssertEqual(info.model.trunk, .resnet50)
        XCTAssertEqual(info.model.headPooling, .gap, "ResNet50's default head pools globally")
        let resumed = try vggtl(["train", "--model", "resnet50"] + common + ["--out", path("r"), "--epochs", "2", "--optimizer", "sgd", "--lr", "1e-2", "--resume"])
        XCTAssertTrue(resumed.contains("resuming"), resumed)
        XCTAssertTrue(try vggtl(["evaluate", "--device", "cpu", "--model", path("r"), "--data", Self.data.path]).contains("confusion matrix"))
        let pred = try vggtl(["predict", "--device", "cpu", "--model", path("r"), "--top", "1", Self.data.appendingPathComponent("Red/img00.jpg").path])
        XCTAssertTrue(pred.contains("img00.jpg: "), pred)

        try vggtl(["finetune", "--model", "resnet50", "--weights", "none"] + common + ["--out", path("ft"), "--epochs", "1", "--freeze-first", "168"])
        XCTAssertEqual(try Checkpoint.load(temp.appendingPathComponent("ft/last.json")).unfreeze, "freeze-first:168")

        let out = try vggtl(["extract", "--device", "cpu", "--model", "inceptionv3", "--weights", "none", "--data", Self.data.path,
                             "--out", path("feat"), "--size", "75x75", "--batch", "5"])
        XCTAssertTrue(out.contains("[1, 1, 2048]"), out)
        XCTAssertEqual(try NPY.read(temp.appendingPathComponent("feat/features.npy")).shape, [24, 1, 1, 2048])
        try vggtl(["train-top", "--device", "cpu", "--features", path("feat"), "--out", path("top"), "--epochs", "1", "--batch", "8"])
        XCTAssertEqual(try Checkpoint.load(temp.appendingPathComponent("top/last.json")).model.headPooling, .gap)

        for (args, needle) in [(["finetune", "--model", "resnet50-torchvision", "--weights", "imagenet", "--data", Self.data.path, "--out", path("x")], "--weights"),
                               (["finetune", "--model", "resnet50", "--weights", "none", "--unfreeze", "mixed9", "--data", Self.data.path, "--out", path("y")], "conv5"),
                               (["summary", "--model", "inceptionv3", "--size", "64x64"], "75x75"),
                               (["train", "--model", "resnet51", "--data", Self.data.path, "--out", path("z")], "resnet50")] {
            let e = try vggtl(args + ["--device", "cpu"], fails: true)
            XCTAssertTrue(e.contains(needle), "\(args): \(e)")
            XCTAssertLessThanOrEqual(e.split(separator: "\n").filter { $0.contains("rror") }.count, 1, e)
        }
    }

    func testUserMistakesAreOneLineErrors() throws {
        for (args, needle) in [
            (["train", "--data", Self.data.path, "--out", path("x"), "--batch", "0"], "--batch"),
            (["train", "--data", Self.data.path, "--out", path("x"), "--lr", "-1"], "--lr"),
            (["finetune", "--weights", "none", "--data", path("missing"), "--out", path("x")], "--data"),
            (["finetune", "--weights", "nope.h5", "--data", Self.data.path, "--out", path("x")], "--weights"),
            (["summary", "--size", "16x16"], "--size"),
            (["devices", "--device", "opencl:9"], "opencl:9"),
            (["evaluate", "--model", path("none"), "--data", Self.data.path], "no checkpoint"),
        ] {
            let out = try vggtl(args + (args.contains("--device") ? [] : ["--device", "cpu"]), fails: true)
            XCTAssertTrue(out.contains(needle), "\(args): \(out)")
            XCTAssertFalse(out.contains("Fatal error") || out.contains("Stack dump"), out)
            XCTAssertLessThanOrEqual(out.split(separator: "\n").filter { $0.contains("rror") }.count, 1, out)
        }
    }
}
