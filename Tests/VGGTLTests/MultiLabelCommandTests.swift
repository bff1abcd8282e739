import XCTest
import Foundation
import VGGTL

/// Issue 20, multi-label through the binary: `--labels` for train, finetune, extract and
/// evaluate, train-top on the multi-hot labels.npy, predict's `--threshold`, the flags that
/// do not apply, on the CPU and on PoCL.
final class MultiLabelCommandTests: BinaryTestCase {
    /// 32x32 PNGs whose labels follow a rule: "red" when the red channel is high, "blue" when the
    /// blue channel is high (independently: an image has none, one or both), with noise. Writes
    /// `name`/imgs/*.png, `name`/labels.csv and one image the file does not list.
    func writeTaggedImages(_ name: String, count: Int = 24, seed: UInt64 = 3) throws -> (dir: String, csv: String) {
        let root = url(name)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("imgs"), withIntermediateDirectories: true)
        var g = SeededGenerator(seed: seed)
        var rows = ["path,tags"]
        func image(red: Bool, blue: Bool) -> RGBImage {
            var px = [UInt8]()
            for _ in 0..<(32 * 32) {
                func level(_ base: Float) -> UInt8 { UInt8(max(0, min(255, base + g.uniform(-35, 35)))) }
                px += [level(red ? 190 : 60), level(110), level(blue ? 190 : 60)]
            }
            return RGBImage(width: 32, height: 32, pixels: px)
        }
        for i in 0..<count {
            let red = i % 4 == 1 || i % 4 == 3, blue = i % 4 >= 2
            let file = String(format: "imgs/img%02d.png", i)
            try ImageCodec.writePNG(image(red: red, blue: blue), to: root.appendingPathComponent(file))
            rows.append(file + "," + [red ? "red" : nil, blue ? "blue" : nil].compactMap { $0 }.joined(separator: "|"))
        }
        try ImageCodec.writePNG(image(red: true, blue: true), to: root.appendingPathComponent("imgs/unlisted.png"))
        try (rows.joined(separator: "\n") + "\n").write(to: root.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        return (root.path, root.appendingPathComponent("labels.csv").path)
    }

    /// `evaluate --json`'s object.
    func evaluation(_ r: Result) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.output)
        let body = String(r.output[try XCTUnwrap(r.output.firstIndex(of: "{"), r.output)...])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
    }

    /// The value after "mAP: " in evaluate's text.
    func mAP(_ r: Result) throws -> Double {
        XCTAssertEqual(r.status, 0, r.output)
        let line = try XCTUnwrap(r.output.split(separator: "\n").first { $0.hasPrefix("mAP: ") }, r.output)
        return try XCTUnwrap(Double(line.dropFirst(5).prefix { $0 != " " }), String(line))
    }

    /// The Keras flows on multi-label images: a network trained from scratch learns the rule
    /// (mAP on other images of the rule near 1); its trunk then serves finetune (a new head) and
    /// extract + train-top; evaluate and predict use each run; all of it on PoCL too (train
    /// there checked against the CPU with --verify, as its epochs are slow on PoCL).
    func testMultiLabelModelsLearnTheRuleOnCPUAndPoCL() throws {
        let train = try writeTaggedImages("train"), test = try writeTaggedImages("test", count: 16, seed: 9)
        let scratch = try run(["train", "--device", "cpu", "--data", train.dir, "--labels", train.csv, "--batch", "8", "--hidden", "16",
                               "--dropout", "0", "--epochs", "15", "--seed", "7", "--out", path("scratch")])
        XCTAssertEqual(scratch.status, 0, scratch.output)
        XCTAssertEqual(scratch.output.split(separator: "\n").filter { $0.contains("skipped 1 image under") && $0.contains(train.csv) }.count, 1, scratch.output)
        XCTAssertTrue(scratch.output.contains("2 labels (multi-label"), scratch.output)
        let info = try Checkpoint.load(url("scratch/last.json"))
        XCTAssertTrue(info.model.multiLabel)
        XCTAssertEqual(info.classNames, ["blue", "red"])
        XCTAssertTrue(try String(contentsOf: url("scratch/last.json"), encoding: .utf8).contains("\"head\" : \"multi-label\""))
        XCTAssertGreaterThan(try mAP(run(["evaluate", "--device", "cpu", "--model", path("scratch"), "--data", test.dir, "--labels", test.csv])), 0.9)

        for device in ["cpu", "opencl"] {
            if device == "opencl" {
                try requireOpenCL()
                let verified = try run(["train", "--device", "opencl", "--verify", "--data", train.dir, "--labels", train.csv, "--batch", "8",
                                        "--hidden", "16", "--epochs", "1", "--limit", "8", "--seed", "7", "--out", path("scratch-cl")])
                XCTAssertEqual(verified.status, 0, verified.output)
            }
            // finetune: the trained trunk, a new multi-label head.
            let ft = try run(["finetune", "--device", device, "--weights", path("scratch"), "--unfreeze", "none", "--data", train.dir, "--labels", train.csv,
                              "--val-split", "0.25", "--out", path("ft-\(device)"), "--epochs", "8"] + headFlags.dropFirst(2))
            XCTAssertEqual(ft.status, 0, ft.output)
            XCTAssertTrue(ft.output.contains("val_loss: ") && ft.output.contains("val_acc: "), ft.output)
            XCTAssertGreaterThan(try mAP(run(["evaluate", "--device", device, "--model", path("ft-\(device)"), "--data", test.dir, "--labels", test.csv])), 0.9, device)

            // extract + train-top: labels.npy is the multi-hot matrix.
            let ex = try run(["extract", "--device", device, "--weights", path("scratch"), "--data", train.dir, "--labels", train.csv, "--out", path("feat-\(device)")])
            XCTAssertEqual(ex.status, 0, ex.output)
            let labels = try NPY.read(url("feat-\(device)/labels.npy"))
            XCTAssertEqual(labels.shape, [24, 2])
            XCTAssertEqual(Array(labels.values.prefix(8)), [0, 0, 0, 1, 1, 0, 1, 1], "rows [blue, red] in the file's order")
            let top = try run(["train-top", "--features", path("feat-\(device)"), "--out", path("top-\(device)"), "--epochs", "20", "--val-split", "0.25"]
                              + ["--device", device] + headFlags.dropFirst(2))
            XCTAssertEqual(top.status, 0, top.output)
            XCTAssertTrue(top.output.contains("2 labels (multi-label)"), top.output)
            let e = try evaluation(run(["evaluate", "--device", device, "--model", path("top-\(device)"), "--data", test.dir, "--labels", test.csv, "--json"]))
            XCTAssertGreaterThan(try XCTUnwrap(e["mAP"] as? Double), 0.9, "\(e)")
            let perLabel = try XCTUnwrap(e["labels"] as? [[String: Any]])
            XCTAssertEqual(perLabel.compactMap { $0["name"] as? String }, ["blue", "red"])
            XCTAssertEqual(perLabel.compactMap { $0["support"] as? Int }, [8, 8])
            for key in ["precision", "recall", "f1", "averagePrecision"] { XCTAssertNotNil(perLabel.first?[key] as? Double, "\(key) in \(e)") }

            // predict: the labels at or above the threshold; --json every label's probability.
            let both = test.dir + "/imgs/img03.png", none = test.dir + "/imgs/img00.png", red = test.dir + "/imgs/img01.png"
            let p = try run(["predict", "--device", device, "--model", path("ft-\(device)"), "--threshold", "0.5", both, none, red])
            XCTAssertEqual(p.status, 0, p.output)
            let lines = p.output.split(separator: "\n")
            XCTAssertTrue(lines.contains { $0.hasPrefix(both + ": ") && $0.contains("blue ") && $0.contains("red ") }, p.output)
            XCTAssertTrue(lines.contains { $0.hasPrefix(none + ": (no label at probability >= 0.5)") }, p.output)
            XCTAssertTrue(lines.contains { $0.hasPrefix(red + ": red ") && !$0.contains("blue") }, p.output)
            let j = try run(["predict", "--device", device, "--model", path("ft-\(device)"), "--json", red])
            let object = try evaluation(j)
            let prediction = try XCTUnwrap((object["predictions"] as? [[String: Any]])?.first)
            let all = try XCTUnwrap(prediction["labels"] as? [[String: Any]])
            XCTAssertEqual(all.compactMap { $0["label"] as? String }, ["blue", "red"], "every label, predicted or not")
            XCTAssertEqual(all.compactMap { $0["predicted"] as? Bool }, [false, true])
            XCTAssertEqual(object["threshold"] as? Double, 0.5)
        }
    }

    /// The mistakes a multi-label user can make are one-line errors naming the flag or the file
    /// and line; flags that count one class per image are refused.
    func testMultiLabelMistakesAreCleanErrors() throws {
        let data = try writeTaggedImages("data", count: 8)
        let common = ["train", "--device", "cpu", "--data", data.dir, "--batch", "4", "--hidden", "8", "--epochs", "1", "--limit", "4"]
        assertCleanError(try run(common + ["--labels", data.csv, "--out", path("a"), "--class-weight", "balanced"]), ["--class-weight", "--labels"])
        assertCleanError(try run(common + ["--labels", data.csv, "--out", path("b"), "--sampler", "balanced"]), ["--sampler balanced", "--labels"])
        assertCleanError(try run(common + ["--labels", data.csv, "--out", path("c"), "--val", data.dir]), ["--val", "--val-labels"])
        try "path,tags\nimgs/img00.png,red\nimgs/img01.png red\n".write(to: url("bad.csv"), atomically: true, encoding: .utf8)
        assertCleanError(try run(common + ["--labels", path("bad.csv"), "--out", path("d")]), [path("bad.csv") + " line 3", "PATH,LABEL"])
        try "path,tags\nimgs/img00.png,red\nimgs/gone.png,red\n".write(to: url("gone.csv"), atomically: true, encoding: .utf8)
        assertCleanError(try run(common + ["--labels", path("gone.csv"), "--out", path("e")]), [path("gone.csv") + " line 3", "gone.png does not exist"])

        // lr-find sweeps the multi-label model finetune would train.
        let sweep = try run(["lr-find", "--device", "cpu", "--weights", "none", "--size", "32x32", "--data", data.dir, "--labels", data.csv,
                             "--batch", "4", "--hidden", "8", "--steps", "6", "--out", path("lrf")])
        XCTAssertEqual(sweep.status, 0, sweep.output)
        XCTAssertTrue(sweep.output.contains("2 labels (multi-label") && sweep.output.contains("suggested"), sweep.output)
        XCTAssertEqual(files(in: "lrf"), ["lr_find.csv", "lr_find.svg"])

        // A multi-label run needs --labels to be evaluated; --threshold is a probability, and only for multi-label models.
        let ok = try run(common + ["--labels", data.csv, "--out", path("ml")])
        XCTAssertEqual(ok.status, 0, ok.output)
        let exported = try run(["weights", "convert", path("ml"), path("ml.safetensors")])
        XCTAssertEqual(exported.status, 0, exported.output)
        XCTAssertTrue(exported.output.contains("vggtl.predictions=sigmoid-multi-label"), "the weights file says how its predictions read\n\(exported.output)")
        assertCleanError(try run(["evaluate", "--device", "cpu", "--model", path("ml"), "--data", data.dir]), ["multi-label", "--labels"])
        let image = data.dir + "/imgs/img00.png"
        for bad in ["0", "1.5", "-0.2"] {
            assertCleanError(try run(["predict", "--device", "cpu", "--model", path("ml"), "--threshold", bad, image]), ["--threshold", bad, "between 0 and 1"])
        }
        assertCleanError(try run(["predict", "--device", "cpu", "--model", path("ml"), "--top", "2", image]), ["--top 2", "multi-label", "--threshold"])
        let folders = try writeImages("folders", perClass: 4)
        let single = try run(["train", "--device", "cpu", "--data", folders.path, "--batch", "4", "--hidden", "8", "--epochs", "1", "--out", path("single")])
        XCTAssertEqual(single.status, 0, single.output)
        assertCleanError(try run(["predict", "--device", "cpu", "--model", path("single"), "--threshold", "0.3", image]), ["--threshold", "multi-label", "--top"])
        assertCleanError(try run(["evaluate", "--device", "cpu", "--model", path("single"), "--data", data.dir, "--labels", data.csv]), ["--labels", "single-label"])
    }
}
