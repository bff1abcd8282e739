import XCTest
import Foundation
import VGGTL

/// Issue 20, multi-label: `--labels labels.csv` (MultiLabelSource), the sigmoid head with binary
/// cross-entropy over [batch, labels], mAP and per-label scores (MultiLabelReport), and the
/// head kind in the model config.
final class MultiLabelTests: VGGTLTestCase {
    var temp: URL!
    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-ml-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    /// Images at the given relative paths (tiny PNGs) and a labels file.
    func dataset(_ images: [String], csv: String) throws -> (dir: URL, csv: URL) {
        let dir = temp.appendingPathComponent("data")
        for p in images {
            let u = dir.appendingPathComponent(p)
            try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
            try ImageCodec.writePNG(RGBImage(width: 4, height: 3, pixels: [UInt8](repeating: 90, count: 36)), to: u)
        }
        let file = temp.appendingPathComponent("labels.csv")
        try csv.write(to: file, atomically: true, encoding: .utf8)
        return (dir, file)
    }

    func testLabelsFileGivesSortedLabelsAndMultiHotTargets() throws {
        let d = try dataset(["a.jpg", "sub/b.png", "c.jpg", "extra1.jpg", "sub/extra2.png"],
                            csv: "filename,tags\r\na.jpg,striped|red\n./sub/b.png, red \n\nc.jpg,\n")
        let s = try MultiLabelSource(directory: d.dir, labels: d.csv)
        XCTAssertEqual(s.classNames, ["red", "striped"])
        XCTAssertTrue(s.isMultiLabel)
        XCTAssertEqual(s.count, 3)
        XCTAssertEqual((0..<3).map(s.targets), [[1, 1], [1, 0], [0, 0]], "an empty label field is an image with no label")
        XCTAssertEqual(s.name(1), d.dir.path + "/sub/b.png")
        XCTAssertEqual(s.labelCounts, [2, 1])
        XCTAssertEqual(s.warnings.count, 1)
        XCTAssertTrue(s.warnings[0].contains("skipped 2 images") && s.warnings[0].contains(d.csv.path), s.warnings[0])
    }

    func testLabelsFileErrorsNameTheFileAndLine() throws {
        func error(_ csv: String) throws -> String {
            let d = try dataset(["a.jpg", "b.jpg", "notes.txt"], csv: csv)
            return vggtlError { _ = try MultiLabelSource(directory: d.dir, labels: d.csv) }
        }
        let csv = temp.appendingPathComponent("labels.csv").path
        var m = try error("path,labels\na.jpg,red\nb.jpg red\n")
        XCTAssertTrue(m.contains("\(csv) line 3") && m.contains("PATH,LABEL"), m)
        m = try error("path,labels\na.jpg,red\nmissing.jpg,red\n")
        XCTAssertTrue(m.contains("\(csv) line 3") && m.contains("missing.jpg does not exist"), m)
        m = try error("path,labels\na.jpg,red\na.jpg,blue\n")
        XCTAssertTrue(m.contains("line 3") && m.contains("first on line 2"), m)
        m = try error("path,labels\na.jpg,red||blue\n")
        XCTAssertTrue(m.contains("line 2") && m.contains("empty label"), m)
        m = try error("path,labels\nnotes.txt,red\n")
        XCTAssertTrue(m.contains("line 2") && m.contains("not a .jpg/.jpeg/.png"), m)
        m = try error("path,labels\n")
        XCTAssertTrue(m.contains("lists no images"), m)
        m = try error("path,labels\na.jpg,\n")
        XCTAssertTrue(m.contains("no image any label"), m)
        m = vggtlError { _ = try MultiLabelSource(directory: self.temp, labels: self.temp.appendingPathComponent("absent.csv")) }
        XCTAssertTrue(m.contains("absent.csv does not exist"), m)
    }

    /// sklearn.metrics.average_precision_score on small cases, ties included:
    /// ([0,0,1,1], [0.1,0.4,0.35,0.8]) -> 0.8333...; ([1,0,1], [0.5,0.5,0.2]) -> 0.5833...;
    /// ([1,0,0,1,0], [0.9,0.8,0.7,0.6,0.1]) -> 0.75.
    func testAveragePrecisionMatchesSklearn() {
        XCTAssertEqual(averagePrecision(scores: [0.1, 0.4, 0.35, 0.8], truth: [false, false, true, true])!, 0.8333333333, accuracy: 1e-9)
        XCTAssertEqual(averagePrecision(scores: [0.5, 0.5, 0.2], truth: [true, false, true])!, 0.5833333333, accuracy: 1e-9)
        XCTAssertEqual(averagePrecision(scores: [0.9, 0.8, 0.7, 0.6, 0.1], truth: [true, false, false, true, false])!, 0.75, accuracy: 1e-12)
        XCTAssertNil(averagePrecision(scores: [0.3, 0.2], truth: [false, false]), "no positives: undefined")
    }

    /// Per-label scores at the threshold, macro averages, mAP over the labels with positives
    /// (sklearn: precision_recall_fscore_support(average=None/"macro", zero_division=0)).
    func testReportScoresPerLabelAndMeanAveragePrecision() {
        let p: [[Float]] = [[0.9, 0.2, 0.1], [0.6, 0.7, 0.3], [0.4, 0.8, 0.2], [0.1, 0.3, 0.6]]
        let t: [[Float]] = [[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
        let r = MultiLabelReport(labelNames: ["a", "b", "c"], probabilities: p, targets: t)
        XCTAssertEqual(r.support, [2, 2, 0])
        // a: predicted {0, 1}, true {0, 2}: P 0.5, R 0.5; b: predicted {1, 2} = true: 1, 1; c: predicted {3}, none true: 0, 0.
        XCTAssertEqual([0, 1, 2].map(r.precision), [0.5, 1, 0])
        XCTAssertEqual([0, 1, 2].map(r.recall), [0.5, 1, 0])
        XCTAssertEqual(r.macroF1, (0.5 + 1 + 0) / 3, accuracy: 1e-12)
        XCTAssertEqual(r.exactMatches, 1)
        // AP a: scores 0.9+, 0.6-, 0.4+, 0.1- -> 0.5*1 + 0.5*(2/3); b: 0.8+, 0.7+ -> 1.
        XCTAssertEqual(r.averagePrecisions[0]!, 0.5 + 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(r.averagePrecisions[1]!, 1, accuracy: 1e-12)
        XCTAssertNil(r.averagePrecisions[2])
        XCTAssertEqual(r.meanAveragePrecision, (0.5 + 1.0 / 3 + 1) / 2, accuracy: 1e-12, "c has no positives: left out")
        XCTAssertEqual(r.labelsWithoutPositives, ["c"])
        XCTAssertTrue(r.text.contains("mAP: 0.9167") && r.text.contains("'c': left out of mAP"), r.text)
        let strict = MultiLabelReport(labelNames: ["a", "b", "c"], probabilities: p, targets: t, threshold: 0.75)
        XCTAssertEqual(strict.precision(1), 1); XCTAssertEqual(strict.recall(1), 0.5)
        XCTAssertEqual(strict.meanAveragePrecision, r.meanAveragePrecision, "AP does not depend on the threshold")
    }

    /// Exact match for the history's acc: every label right at probability 0.5 (logit 0 counts positive).
    func testCorrectCountIsExactMatch() {
        let z: [Float] = [2, -1, 0, 3, -2, -0.5]
        XCTAssertEqual(correctCount(logits: z, targets: [1, 0, 1, 1, 0, 0], rows: 2, multiLabel: true), 2)
        XCTAssertEqual(correctCount(logits: z, targets: [1, 1, 1, 1, 0, 0], rows: 2, multiLabel: true), 1)
        XCTAssertEqual(correctCount(logits: [1, 2, 5, 0], targets: [1, 0], rows: 2, multiLabel: false), 2)
    }

    /// The head kind travels in the config's JSON; configs without it (older checkpoints) are single-label.
    func testModelConfigRecordsTheHeadKind() throws {
        var c = ModelConfig(trunk: .none, inputShape: [1, 1, 8], classes: 2)
        XCTAssertEqual(c.outputUnits, 1)
        let old = try JSONEncoder().encode(c)
        XCTAssertFalse(String(decoding: old, as: UTF8.self).contains("\"head\":"), "single-label configs are written as before")
        XCTAssertFalse(try JSONDecoder().decode(ModelConfig.self, from: old).multiLabel)
        c.multiLabel = true
        XCTAssertEqual(c.outputUnits, 2)
        XCTAssertEqual(c.loss, .sigmoidBinaryCrossEntropy)
        XCTAssertEqual(c.targetShape(rows: 3), [3, 2])
        let json = try JSONEncoder().encode(c)
        XCTAssertTrue(String(decoding: json, as: UTF8.self).contains("\"head\":\"multi-label\""))
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: json), c)
    }

    /// Binary cross-entropy over a [3, 7] batch of multi-hot targets: the mean over labels and
    /// batch (Keras' binary_crossentropy, torch's BCEWithLogitsLoss) in float64 by hand, and its
    /// gradient by central differences; large logits stay finite.
    func testBinaryCrossEntropyOverLabelsAndItsGradient() throws {
        let d = cpuDevice, rows = 3, labels = 7
        var z = randomArray(rows * labels, seed: 21, range: -3...3)
        let t: [Float] = (0..<(rows * labels)).map { Float(($0 * 5 + $0 / 7) % 3 == 0 ? 1 : 0) }
        let logits = try Tensor(z, shape: [rows, labels], on: d), targets = try Tensor(t, shape: [rows, labels], on: d)
        let loss = Loss(.sigmoidBinaryCrossEntropy)
        let (value, gradient) = try loss.compute(logits: logits, labels: targets)
        let expected = zip(z, t).map { zi, ti -> Double in
            let p = 1 / (1 + exp(-Double(zi)))
            return -(Double(ti) * log(p) + (1 - Double(ti)) * log(1 - p))
        }.reduce(0, +) / Double(rows * labels)
        XCTAssertEqual(Double(value), expected, accuracy: 1e-6)
        let analytic = gradient.toArray()
        for i in z.indices {
            let v = z[i]
            func at(_ x: Float) throws -> Float {
                z[i] = x
                z.withUnsafeBufferPointer { d.write($0, to: logits.buffer, offset: 0) }
                return try loss.compute(logits: logits, labels: targets).loss
            }
            let numeric = (try at(v + 1e-2) - at(v - 1e-2)) / 2e-2
            _ = try at(v)
            XCTAssertEqual(numeric, analytic[i], accuracy: 2e-4, "dlogits[\(i)]")
        }
        let big = try Loss(.sigmoidBinaryCrossEntropy).compute(logits: Tensor([200, -200, 90], shape: [1, 3], on: d), labels: Tensor([0, 1, 1], shape: [1, 3], on: d))
        XCTAssertEqual(Double(big.loss), (200 + 200 + 0) / 3, accuracy: 1e-3, "stable from logits")
    }

    /// CPU and OpenCL agree on the multi-label loss and gradient at odd shapes, with the
    /// data-parallel gradient scale too.
    func testBinaryCrossEntropyParityOverLabels() throws {
        for (rows, labels, scale) in [(3, 7, Float?.none), (1, 13, nil), (5, 3, Float(0.125))] {
            let z = randomArray(rows * labels, seed: 31, range: -8...8)
            let t: [Float] = (0..<(rows * labels)).map { Float($0 % 3 == 1 ? 1 : 0) }
            var out: [(Float, [Float])] = []
            for d in [cpuDevice as Device, openclDevice] {
                let r = try Loss(.sigmoidBinaryCrossEntropy).compute(logits: Tensor(z, shape: [rows, labels], on: d),
                                                                     labels: Tensor(t, shape: [rows, labels], on: d), gradientScale: scale)
                out.append((r.loss, r.gradient.toArray()))
            }
            XCTAssertEqual(out[0].0, out[1].0, accuracy: 1e-5 * max(1, abs(out[0].0)), "\(rows)x\(labels) loss")
            assertClose(out[1].1, out[0].1, tol: 1e-5, "\(rows)x\(labels) gradient")
            if let scale {
                // Data-parallel: each element's gradient is scaled by 1 / (all ranks' rows * labels).
                let unscaled = try Loss(.sigmoidBinaryCrossEntropy).compute(logits: Tensor(z, shape: [rows, labels], on: cpuDevice),
                                                                            labels: Tensor(t, shape: [rows, labels], on: cpuDevice)).gradient.toArray()
                assertClose(out[0].1, unscaled.map { $0 * Float(rows) * scale }, tol: 1e-6, "gradient scale")
            }
        }
    }

    /// Features with multi-hot rows: batches carry each sample's row, subsets keep them.
    func testArrayBatchesCarryMultiHotRows() throws {
        let b = try ArrayBatches(values: [0, 1, 2, 3], sampleShape: [1], labels: [0, 0, 0, 0], targets: [1, 0, 0, 1, 1, 1, 0, 0],
                                 batchSize: 3, shuffle: false, seed: 1)
        let batches = Array(b.batches(epoch: 0))
        XCTAssertEqual(batches.map(\.labels), [[1, 0, 0, 1, 1, 1], [0, 0]])
        let s = try b.subset([3, 1])
        XCTAssertEqual(Array(s.batches(epoch: 0)).map(\.labels), [[0, 0, 0, 1]])
    }
}
