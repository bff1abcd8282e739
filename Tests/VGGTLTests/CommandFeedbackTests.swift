import XCTest
import Foundation
import VGGTL

/// Issue 22: what the commands tell a user when something is off (nothing predicted, no
/// network for the ImageNet file, an OpenCL device that is the CPU, negative numbers, a
/// truncated file, a backbone name where a run folder goes), the confusion matrix's layout,
/// and vggtl's own run weights through .h5 and torch names and back. Through the binary.
final class CommandFeedbackTests: BinaryTestCase {
    func ok(_ r: Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, r.output, file: file, line: line)
        XCTAssertFalse(r.signaled || r.output.contains("Fatal error") || r.output.contains("Swift runtime failure"), r.output, file: file, line: line)
    }

    /// A small run folder: VGG16 from random weights at 32x32, a head of 8 hidden units.
    func trainRun(_ name: String, data: URL, extra: [String] = []) throws {
        ok(try run(["finetune", "--device", "cpu", "--weights", "none", "--data", data.path, "--val", data.path, "--out", path(name),
                    "--size", "32x32", "--epochs", "1", "--batch", "6", "--hidden", "8", "--seed", "5"] + extra))
    }

    // MARK: - 3. predict that predicts nothing fails, naming each file

    func testPredictThatReadsNoInputFailsAndListsEachFileWithItsReason() throws {
        let data = try writeImages("data", perClass: 3)
        try trainRun("run", data: data)
        try Data("not an image".utf8).write(to: url("bad.jpg"))
        try Data([0x89, 0x50]).write(to: url("short.png"))
        let json = try run(["predict", "--device", "cpu", "--model", path("run"), "--json", path("bad.jpg"), path("short.png")])
        XCTAssertEqual(json.status, 1, json.output)
        XCTAssertEqual(json.errorLines.count, 1, json.output)
        XCTAssertTrue(json.errorLines.first?.contains("none of the 2 images could be read") == true, json.output)
        // The JSON (stdout) still comes, with one entry per file and its reason.
        let body = json.output[json.output.firstIndex(of: "{")!...json.output.lastIndex(of: "}")!]
        let parsed = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        XCTAssertEqual((parsed["predictions"] as? [Any])?.count, 0, json.output)
        let skipped = parsed["skipped"] as? [[String: String]] ?? []
        XCTAssertEqual(skipped.map { $0["file"] ?? "" }, [path("bad.jpg"), path("short.png")], json.output)
        XCTAssertTrue(skipped.allSatisfy { $0["reason"]?.hasPrefix("not a JPEG or PNG image") == true }, json.output)
        // Without --json: one line per file (its path said once), then the error.
        let text = try run(["predict", "--device", "cpu", "--model", path("run"), path("bad.jpg"), path("short.png")])
        assertCleanError(text, ["none of the 2 images could be read"])
        for file in ["bad.jpg", "short.png"] {
            XCTAssertEqual(text.output.split(separator: "\n").filter { $0.hasPrefix("warning: skipped \(path(file)): not a JPEG or PNG image") }.count, 1, text.output)
        }
        // A folder with no images is nothing to predict either.
        try FileManager.default.createDirectory(at: url("empty"), withIntermediateDirectories: true)
        assertCleanError(try run(["predict", "--device", "cpu", "--model", path("run"), path("empty")]), [path("empty"), "no .jpg, .jpeg or .png"])
        // One readable image among them: predicted, exit 0, the other listed.
        let some = try run(["predict", "--device", "cpu", "--model", path("run"), "--json", path("bad.jpg"), data.appendingPathComponent("cats/img00.jpg").path])
        ok(some)
        XCTAssertTrue(some.output.contains("\"skipped\"") && some.output.contains("img00.jpg"), some.output)
    }

    // MARK: - 4. --weights imagenet offline says how to go on

    func testImageNetWeightsOfflineNameTheURLWeightsNoneAndWeightsFile() throws {
        let data = try writeImages("data", perClass: 1)
        // libcurl sends the download to a closed local port: it fails at once, network or not.
        let offline = ["KERAS_HOME": path("keras"), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                       "no_proxy": "", "NO_PROXY": ""]
        let file = ImageNetWeights.fileName(includeTop: false)
        let r = try run(["extract", "--device", "cpu", "--data", data.path, "--out", path("f"), "--size", "32x32"], env: offline)
        assertCleanError(r, ["--weights imagenet", "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/\(file)",
                             path("keras/models/\(file)"), "--weights none", "--weights FILE"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("keras/models/\(file)")))
    }

    // MARK: - 6. An OpenCL device that is the CPU warns once

    func testOpenCLDeviceOnTheCPUWarnsOnceThatDeviceCPUIsFaster() throws {
        guard let pocl = OpenCLDevice.enumerate().first(where: { $0.type == .cpu }) else { throw XCTSkip("no OpenCL CPU device (PoCL)") }
        let data = try writeImages("data", perClass: 2)
        try trainRun("run", data: data)
        func warnings(_ r: Result) -> [Substring] { r.output.split(separator: "\n").filter { $0.contains("CL_DEVICE_TYPE_CPU") } }
        for args in [["predict", "--device", "opencl:\(pocl.index)", "--model", path("run"), data.appendingPathComponent("cats").path],
                     ["evaluate", "--device", "opencl:\(pocl.index)", "--model", path("run"), "--data", data.path]] {
            let r = try run(args)
            ok(r)
            XCTAssertEqual(warnings(r).count, 1, r.output)
            XCTAssertTrue(warnings(r).first?.hasPrefix("warning: --device opencl:\(pocl.index)") == true, r.output)
            XCTAssertTrue(warnings(r).first?.contains("use --device cpu") == true, r.output)
        }
        let cpu = try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", data.path])
        ok(cpu)
        XCTAssertEqual(warnings(cpu).count, 0, cpu.output)
    }

    // MARK: - 8. A run's weights through .h5, torch names and back, head included

    func testRunWeightsRoundTripThroughH5AndTorchNamesWithTheirHead() throws {
        // torchvision's VGG16 keeps its head in classifier, ResNet50 in fc: the tutorial head
        // replaces it by Sequential(Linear, ReLU, Dropout, Linear), so the linears are .0 and .3.
        try roundTrip(model: "vgg16", torchHead: "classifier", features: 512)
    }

    func testResNetRunWeightsRoundTripThroughH5AndTorchNamesWithTheirHead() throws {
        try roundTrip(model: "resnet50-torchvision", torchHead: "fc", features: 2048)
    }

    /// A run of `model` at 32x32 (`features` channels of 1x1 reach the head's Dense(8)) -> .h5 ->
    /// inspect -> torch-named safetensors -> .h5 again, values equal; both files load whole.
    func roundTrip(model: String, torchHead: String, features: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let data = try writeImages("data", perClass: 3)
        try trainRun("run", data: data, extra: ["--model", model])
        let trained = try weights("run", "best")
        ok(try run(["weights", "convert", path("run"), path("run.h5")]), file: file, line: line)

        let inspect = try run(["weights", "inspect", path("run.h5")])
        ok(inspect, file: file, line: line)
        XCTAssertFalse(inspect.output.contains("paired by order"), inspect.output, file: file, line: line)
        XCTAssertFalse(inspect.output.contains(", but "), inspect.output, file: file, line: line)
        let rows = inspect.output.split(separator: "\n")
        XCTAssertTrue(rows.contains { $0.hasPrefix("dense/kernel:0") && $0.hasSuffix("head dense kernel") }, inspect.output, file: file, line: line)
        XCTAssertTrue(rows.contains { $0.hasPrefix("predictions/kernel:0") && $0.hasSuffix("head predictions kernel") }, inspect.output, file: file, line: line)
        XCTAssertTrue(inspect.output.contains("every trunk tensor found, with a head of its own (dense, predictions)"), inspect.output, file: file, line: line)

        ok(try run(["weights", "convert", path("run.h5"), path("torch.safetensors"), "--naming", "torch"]), file: file, line: line)
        let torch = try WeightFile.load(url("torch.safetensors"))
        let dense = trained["dense/kernel"]!   // [features, 8]
        let linear = torch.tensors.first { $0.name == "\(torchHead).0.weight" }
        XCTAssertEqual(linear?.shape, [8, features], file: file, line: line)
        XCTAssertEqual(linear?.values, (0..<8).flatMap { o in (0..<features).map { i in dense[i * 8 + o] } }, file: file, line: line)
        XCTAssertEqual(torch.tensors.first { $0.name == "\(torchHead).3.bias" }?.values, trained["predictions/bias"], file: file, line: line)
        let torchInspect = try run(["weights", "inspect", path("torch.safetensors")])
        ok(torchInspect, file: file, line: line)
        XCTAssertTrue(torchInspect.output.split(separator: "\n").contains { $0.hasPrefix("\(torchHead).0.weight") && $0.contains("head dense kernel") },
                      torchInspect.output, file: file, line: line)

        ok(try run(["weights", "convert", path("torch.safetensors"), path("back.h5")]), file: file, line: line)
        let back = try WeightFile.load(url("back.h5"))
        XCTAssertEqual(back.tensors.count, try WeightFile.load(url("run.h5")).tensors.count, file: file, line: line)
        for t in back.tensors { XCTAssertEqual(t.values, trained[t.name], t.name, file: file, line: line) }
        XCTAssertEqual(back.names.filter { $0.hasPrefix("dense/") || $0.hasPrefix("predictions/") }.sorted(),
                       ["dense/bias", "dense/kernel", "predictions/bias", "predictions/kernel"], file: file, line: line)
        // Both files load into the same model whole: trunk and head, nothing new.
        for weights in ["back.h5", "torch.safetensors"] {
            let r = try run(["finetune", "--device", "cpu", "--model", model, "--weights", path(weights), "--data", data.path, "--out", path("again-\(weights)"),
                             "--size", "32x32", "--epochs", "1", "--batch", "6", "--hidden", "8"])
            ok(r, file: file, line: line)
            XCTAssertTrue(r.output.split(separator: "\n").contains { $0.hasPrefix("loaded \(back.tensors.count) arrays from \(weights); new:") && $0.hasSuffix("new: ") },
                          r.output, file: file, line: line)
        }
    }

    // MARK: - 11. Small ones

    func testNegativeNumbersAreCheckedNotMissing() throws {
        let data = try writeImages("data", perClass: 1)
        let train = ["finetune", "--device", "cpu", "--data", data.path, "--out", path("o")]
        let cases: [([String], [String])] = [
            (train + ["--batch", "-1"], ["--batch", "'-1'", "at least 1"]),
            (train + ["--epochs", "-3"], ["--epochs", "'-3'", "at least 1"]),
            (train + ["--head-epochs", "-1"], ["--head-epochs", "'-1'", "0 (one stage) or more"]),
            (train + ["--momentum", "-0.5"], ["--momentum", "'-0.5'", "[0, 1)"]),
            (train + ["--lr", "-0.1"], ["--lr", "'-0.1'", "positive"]),
            (train + ["--hidden", "-5"], ["--hidden", "'-5'", "0 or more"]),
            (train + ["--early-stopping", "-2"], ["--early-stopping", "'-2'", "at least 1"]),
            (train + ["--threads", "-2"], ["--threads", "'-2'", "positive"]),
            (["evaluate", "--model", path("o"), "--data", data.path, "--batch", "-4"], ["--batch", "'-4'", "at least 1"]),
            (["predict", "--model", path("o"), "--top", "-1", data.path], ["--top", "'-1'", "at least 1"]),
            (["extract", "--data", data.path, "--out", path("e"), "--batch", "-2"], ["--batch", "'-2'", "at least 1"]),
            (["bench", "--device", "cpu", "--cases", "none", "--gemm", "-1"], ["--gemm", "'-1'", "0 to skip"]),
            (["summary", "--classes", "-1"], ["--classes", "'-1'", "at least 2"]),
        ]
        for (args, needles) in cases {
            let r = try run(args)
            assertCleanError(r, needles)
            XCTAssertFalse(r.output.contains("Missing value"), r.output)
        }
    }

    func testTruncatedSafetensorsReportsOneSizeInEveryCommand() throws {
        var rng = SeededGenerator(seed: 3)
        let set = weightSet(of: try VGG16.trunk(batchNorm: false, on: cpuDevice, rng: &rng))
        try WeightFile.save(set, to: url("full.safetensors"), format: .safetensors)
        let bytes = try Data(contentsOf: url("full.safetensors"))
        try bytes.prefix(bytes.count / 3).write(to: url("cut.safetensors"))
        let needed = "needs \(bytes.count) bytes but the file has \(bytes.count / 3)"
        let data = try writeImages("data", perClass: 1)
        // Tensors sit in the file in name-hash order of the header: several runs see several orders.
        for _ in 0..<3 {
            assertCleanError(try run(["weights", "inspect", path("cut.safetensors")]), [path("cut.safetensors"), needed])
            assertCleanError(try run(["extract", "--device", "cpu", "--weights", path("cut.safetensors"), "--data", data.path,
                                      "--out", path("f"), "--size", "32x32"]), [path("cut.safetensors"), needed])
        }
    }

    func testConfusionMatrixRowNumbersAndCountsAlign() throws {
        let classes = ["a", "bee", "c", "dragonfly", "e", "f", "g", "h", "i", "j", "kangaroo"]
        let data = try writeImages("data", perClass: 1, classes: classes)
        try trainRun("run", data: data)
        let r = try run(["evaluate", "--device", "cpu", "--model", path("run"), "--data", data.path])
        ok(r)
        let lines = r.output.split(separator: "\n", omittingEmptySubsequences: false)
        let top = lines.firstIndex { $0.hasPrefix("confusion matrix") }!
        let header = lines[top + 1], rows = Array(lines[(top + 2)..<(top + 2 + classes.count)])
        // Each row: its number right-aligned in one column, then the class name, then the counts.
        let numberEnd = rows.map { row in row.distance(from: row.startIndex, to: row.firstIndex(where: { $0 != " " })!) + String(row.drop { $0 == " " }.prefix { $0.isNumber }).count }
        XCTAssertEqual(Set(numberEnd).count, 1, "row numbers end in different columns:\n\(lines[top...].joined(separator: "\n"))")
        for (c, (row, name)) in zip(rows, classes).enumerated() {
            let fields = row.split(separator: " ")
            XCTAssertEqual(fields.first.map(String.init), "\(c)", String(row))
            XCTAssertEqual(fields.dropFirst().first.map(String.init), name, String(row))
            XCTAssertEqual(row.count, header.count, "a row as wide as the header:\n\(header)\n\(row)")
        }
        // The header's column numbers end where the counts under them end.
        let ends = { (s: Substring) in s.indices.filter { i in s[i] != " " && (s.index(after: i) == s.endIndex || s[s.index(after: i)] == " ") }.map { s.distance(from: s.startIndex, to: $0) } }
        XCTAssertEqual(ends(header), Array(ends(rows[0]).suffix(classes.count)), "\(header)\n\(rows[0])")
    }

    func testABackboneNameWhereARunFolderGoesSaysModelIsARunFolder() throws {
        let data = try writeImages("data", perClass: 1)
        for args in [["evaluate", "--device", "cpu", "--model", "resnet50", "--data", data.path],
                     ["predict", "--device", "cpu", "--model", "vgg16", data.path]] {
            assertCleanError(try run(args), ["--model \(args[4])", "run folder", "not a backbone", "finetune"])
        }
        assertCleanError(try run(["evaluate", "--device", "cpu", "--model", path("nowhere"), "--data", data.path]),
                         ["--model \(path("nowhere")): no such folder", "no checkpoint", "run folder"])
    }
}
