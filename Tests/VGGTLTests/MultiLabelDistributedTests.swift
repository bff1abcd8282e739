import XCTest
import Foundation
import VGGTL

/// Issue 20, multi-label under mpirun: extract gathers the multi-hot rows in order, train-top on
/// 2 ranks x batch B equals one process at batch 2B (the loss the mean over all ranks' labels and
/// images), and evaluate scores the probabilities of every rank.
extension DistributedTests {
    /// 13 PNGs (odd: an uneven last step) with 3 labels, and their labels.csv.
    func taggedImages() throws -> (dir: String, csv: String) {
        let root = temp.appendingPathComponent("tagged")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        var g = SeededGenerator(seed: 5)
        var rows = ["file,labels"]
        for i in 0..<13 {
            let tags = ["a", "b", "c"].enumerated().filter { (i >> $0.offset) & 1 == 1 }.map(\.element)
            let px = (0..<(32 * 32 * 3)).map { k in UInt8(max(0, min(255, Float(k % 3 < tags.count ? 180 : 70) + g.uniform(-40, 40)))) }
            try ImageCodec.writePNG(RGBImage(width: 32, height: 32, pixels: px), to: root.appendingPathComponent("i\(i).png"))
            rows.append("i\(i).png,\(tags.joined(separator: "|"))")
        }
        try rows.joined(separator: "\n").write(to: root.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        return (root.path, root.appendingPathComponent("labels.csv").path)
    }

    func testMultiLabelExtractTrainTopAndEvaluateUnderTwoRanksEqualOneProcess() throws {
        _ = try requireMPI()
        let data = try taggedImages()
        var rng = SeededGenerator(seed: 9)
        let trunk = try VGG16.trunk(batchNorm: false, on: CPUDevice(), rng: &rng)
        try KerasH5.write(weightSet(of: trunk), to: temp.appendingPathComponent("trunk.h5"))
        let args = ["extract", "--device", "cpu", "--weights", path("trunk.h5"), "--data", data.dir, "--labels", data.csv, "--size", "32x32", "--batch", "3"]
        try single(args + ["--out", path("f1")])
        try mpi(2, args + ["--out", path("f2")])
        let l1 = try NPY.read(temp.appendingPathComponent("f1/labels.npy")), l2 = try NPY.read(temp.appendingPathComponent("f2/labels.npy"))
        XCTAssertEqual(l1.shape, [13, 3])
        XCTAssertEqual(Array(l1.values.prefix(9)), [0, 0, 0, 1, 0, 0, 0, 1, 0], "i0: none, i1: a, i2: b")
        XCTAssertEqual(l1.values, l2.values, "multi-hot rows gathered in order")
        assertClose(try NPY.read(temp.appendingPathComponent("f2/features.npy")).values,
                    try NPY.read(temp.appendingPathComponent("f1/features.npy")).values, tol: 1e-4, "features")

        let common = ["train-top", "--device", "cpu", "--features", path("f1"), "--epochs", "3", "--hidden", "16", "--dropout", "0",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--val-split", "0.3", "--seed", "7"]
        try single(common + ["--out", path("one"), "--batch", "4"])
        let two = try mpi(2, common + ["--out", path("two"), "--batch", "2"])
        XCTAssertTrue(two.text.contains("2 ranks x batch 2 = global batch 4"), two.text)
        XCTAssertTrue(try checkpoint("two").0.model.multiLabel)
        try assertSameRun("one", "two", tol: 1e-5)

        let evaluate = ["evaluate", "--device", "cpu", "--model", path("one"), "--data", data.dir, "--labels", data.csv, "--batch", "3", "--json"]
        func scores(_ text: String) throws -> [String: Any] {
            let body = String(text[try XCTUnwrap(text.firstIndex(of: "{"), text)...])
            var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
            object["model"] = nil
            return object
        }
        let e1 = try scores(single(evaluate)), e2 = try scores(mpi(2, evaluate).text)
        XCTAssertEqual(e1["images"] as? Int, 13)
        XCTAssertNotNil(e1["mAP"] as? Double, "\(e1)")
        for key in ["mAP", "exactMatch", "macroF1", "loss"] {
            XCTAssertEqual(try XCTUnwrap(e1[key] as? Double, key), try XCTUnwrap(e2[key] as? Double, key), accuracy: 1e-5, key)
        }
        XCTAssertEqual((e1["labels"] as? [[String: Any]])?.compactMap { $0["support"] as? Int }, (e2["labels"] as? [[String: Any]])?.compactMap { $0["support"] as? Int })
    }
}
