import XCTest
import Foundation
import VGGTL

/// `vggtl lr-find` end to end on tiny images: its suggestions, its CSV and SVG, an early stop
/// when the loss explodes, and nothing else on disk changing.
final class LearningRateFinderTests: BinaryTestCase {
    /// finetune's flags for a quick task: random VGG16 at 32x32, batches of 4 (2 per pass).
    func flags(_ data: URL, device: String = "cpu") -> [String] {
        ["--device", device, "--weights", "none", "--data", data.path, "--size", "32x32", "--batch", "4", "--hidden", "16", "--seed", "3"]
    }

    /// The rates of the line that says "suggested".
    func suggestedRates(_ output: String, file: StaticString = #filePath, line: UInt = #line) -> [Double] {
        guard let text = output.split(separator: "\n").first(where: { $0.contains("suggested") }) else {
            XCTFail("no line says 'suggested':\n\(output)", file: file, line: line)
            return []
        }
        let re = try! NSRegularExpression(pattern: "[0-9]+\\.[0-9]+e[-+][0-9]+")
        let s = String(text)
        return re.matches(in: s, range: NSRange(s.startIndex..., in: s)).map { Double((s as NSString).substring(with: $0.range))! }
    }

    /// The CSV's rows as (step, lr, loss, smoothed loss), after checking its header.
    func rows(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[Double]] {
        let lines = try String(contentsOf: url(name).appendingPathComponent("lr_find.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "step,lr,loss,smoothed_loss", file: file, line: line)
        return lines.dropFirst().map { $0.split(separator: ",").map { Double($0)! } }
    }

    func assertIncreasingRates(_ rows: [[Double]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(rows.map { $0[0] }, (1...rows.count).map(Double.init), "one row per step", file: file, line: line)
        for (a, b) in zip(rows, rows.dropFirst()) { XCTAssertLessThan(a[1], b[1], "lr grows every step", file: file, line: line) }
    }

    func testSuggestsTwoRatesWithinTheSweepAndWritesOnlyItsCSVAndSVG() throws {
        let data = try writeImages("data", perClass: 4)
        let r = try run(["lr-find"] + flags(data) + ["--steps", "30", "--out", path("lrf")])
        XCTAssertEqual(r.status, 0, r.output)
        let rates = suggestedRates(r.output)
        XCTAssertEqual(rates.count, 2, r.output)
        for rate in rates { XCTAssertTrue(rate >= 1e-7 && rate <= 10, "\(rate) outside [1e-7, 10]\n\(r.output)") }
        XCTAssertEqual(files(in: "lrf"), ["lr_find.csv", "lr_find.svg"], "no checkpoint, history or lock is left")
        let rows = try rows("lrf")
        XCTAssertGreaterThan(rows.count, 2)
        XCTAssertLessThanOrEqual(rows.count, 30)
        assertIncreasingRates(rows)
        XCTAssertEqual(rows[0][1], 1e-7, accuracy: 1e-12, "the sweep starts at --start-lr")
        let svg = try String(contentsOf: url("lrf/lr_find.svg"), encoding: .utf8)
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.contains("<polyline") && svg.contains("steepest") && svg.contains("minimum/10"), svg)
    }

    func testStopsEarlyWhenTheLossExplodes() throws {
        let data = try writeImages("data", perClass: 4)
        let r = try run(["lr-find"] + flags(data) + ["--unfreeze", "none", "--optimizer", "sgd", "--start-lr", "1e-4", "--end-lr", "1e6",
                                                     "--steps", "60", "--out", path("lrf")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("stopped at step"), r.output)
        let rows = try rows("lrf")
        XCTAssertLessThan(rows.count, 60, "the sweep stops before its last step\n\(r.output)")
        assertIncreasingRates(rows)
        XCTAssertLessThan(rows.last![1], 1e6)
        XCTAssertEqual(suggestedRates(r.output).count, 2, r.output)
    }

    /// A head trained by finetune, then lr-find for the next stage: the run folder stays byte for
    /// byte as it was, the model loads as finetune's would, and lr-find writes into no run folder.
    func testLeavesTheRunItStartsFromAsItIsAndLoadsItAsFinetuneDoes() throws {
        let data = try writeImages("data", perClass: 4)
        let head = try run(["finetune"] + flags(data) + ["--unfreeze", "none", "--epochs", "1", "--out", path("head")])
        XCTAssertEqual(head.status, 0, head.output)
        func snapshot() throws -> [String: Data] {
            Dictionary(uniqueKeysWithValues: try files(in: "head").map { ($0, try Data(contentsOf: url("head").appendingPathComponent($0))) })
        }
        let before = try snapshot()
        XCTAssertTrue(before.keys.contains("last.json"), "\(before.keys)")
        let next = ["--device", "cpu", "--weights", path("head"), "--data", data.path, "--batch", "4", "--hidden", "16", "--seed", "3", "--unfreeze", "block5"]
        let r = try run(["lr-find"] + next + ["--steps", "12", "--out", path("lrf")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(suggestedRates(r.output).count, 2, r.output)
        XCTAssertEqual(try snapshot(), before, "the run given as --weights is unchanged")
        XCTAssertEqual(files(in: "lrf"), ["lr_find.csv", "lr_find.svg"])
        // The same starting weights and model as the finetune of the same flags.
        let ft = try run(["finetune"] + next + ["--epochs", "1", "--out", path("ft")])
        XCTAssertEqual(ft.status, 0, ft.output)
        func said(_ output: String) -> [Substring] { output.split(separator: "\n").filter { $0.hasPrefix("loaded ") || $0.hasPrefix("model: ") } }
        XCTAssertEqual(said(r.output).count, 2, r.output)
        XCTAssertEqual(said(r.output), said(ft.output))
        // Into the run itself, or into another run: refused before any work.
        assertCleanError(try run(["lr-find"] + next + ["--out", path("head")]), ["--out", "--weights"])
        assertCleanError(try run(["lr-find"] + next + ["--out", path("head/lr")]), ["--out", "--weights"])
        assertCleanError(try run(["lr-find"] + next + ["--out", path("ft")]), ["--out", "holds no run"])
        XCTAssertEqual(try snapshot(), before)
    }

    /// --top-model starts the head as finetune's does, and the top model's run stays as it is.
    func testStartsTheHeadFromATopModel() throws {
        let data = try writeImages("data", perClass: 2)
        let image = ["--device", "cpu", "--weights", "none", "--data", data.path, "--size", "32x32"]
        XCTAssertEqual(try run(["extract"] + image + ["--out", path("feat")]).status, 0)
        XCTAssertEqual(try run(["train-top", "--device", "cpu", "--features", path("feat"), "--hidden", "0", "--epochs", "1", "--batch", "2", "--out", path("top")]).status, 0)
        let before = try files(in: "top").map { try Data(contentsOf: url("top").appendingPathComponent($0)) }
        let r = try run(["lr-find"] + image + ["--top-model", path("top"), "--batch", "2", "--steps", "8", "--out", path("lrf")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("head initialised from \(path("top"))") && r.output.contains("no hidden layer"), r.output)
        XCTAssertEqual(suggestedRates(r.output).count, 2, r.output)
        XCTAssertEqual(try files(in: "top").map { try Data(contentsOf: url("top").appendingPathComponent($0)) }, before)
        XCTAssertEqual(files(in: "lrf"), ["lr_find.csv", "lr_find.svg"])
    }

    func testRefusesFlagsThatCannotDescribeASweep() throws {
        let data = try writeImages("data", perClass: 1)
        assertCleanError(try run(["lr-find"] + flags(data) + ["--start-lr", "1e-2", "--end-lr", "1e-3", "--out", path("a")]), ["--end-lr", "0.001", "--start-lr"])
        assertCleanError(try run(["lr-find"] + flags(data) + ["--steps", "1", "--out", path("b")]), ["--steps"])
        assertCleanError(try run(["lr-find"] + flags(data) + ["--resume", "--out", path("c")]), ["--resume", "--weights"])
        assertCleanError(try run(["lr-find"] + flags(data) + ["--head-epochs", "2", "--out", path("d")]), ["--head-epochs", "--unfreeze none"])
    }

    /// Issue 20's training flags: --accumulate and --restore-best describe no sweep (one step per
    /// batch, no epochs), so they are one-line errors naming the flag.
    func testRefusesAccumulateAndRestoreBest() throws {
        let data = try writeImages("data", perClass: 1)
        assertCleanError(try run(["lr-find"] + flags(data) + ["--accumulate", "2", "--out", path("a")]), ["--accumulate 2", "lr-find", "one optimiser step per batch"])
        assertCleanError(try run(["lr-find"] + flags(data) + ["--restore-best", "--out", path("b")]), ["--restore-best", "lr-find"])
        XCTAssertEqual(try run(["lr-find"] + flags(data) + ["--accumulate", "1", "--steps", "4", "--out", path("c")]).status, 0,
                       "--accumulate 1 is no accumulation")
    }

    /// --class-weight weighs the sweep's loss as it weighs finetune's: every class at 2 doubles
    /// the first step's loss (same seed, same first batch, same starting weights).
    func testClassWeightsWeighTheSweepsLoss() throws {
        let data = try writeImages("data", perClass: 4)
        try #"{"cats": 2, "dogs": 2}"#.write(to: url("double.json"), atomically: true, encoding: .utf8)
        let plain = try run(["lr-find"] + flags(data) + ["--steps", "4", "--out", path("plain")])
        XCTAssertEqual(plain.status, 0, plain.output)
        let weighted = try run(["lr-find"] + flags(data) + ["--steps", "4", "--class-weight", path("double.json"), "--out", path("weighted")])
        XCTAssertEqual(weighted.status, 0, weighted.output)
        XCTAssertTrue(weighted.output.contains("class weights"), weighted.output)
        let a = try rows("plain")[0][2], b = try rows("weighted")[0][2]
        XCTAssertEqual(b, 2 * a, accuracy: 1e-5 * abs(a), "the first step's loss with every class weighing 2")
    }

    func testRunsOnOpenCL() throws {
        try requireOpenCL()
        let index = OpenCLDevice.enumerate().first!.index
        let data = try writeImages("data", perClass: 4)
        let r = try run(["lr-find"] + flags(data, device: "opencl:\(index)") + ["--steps", "10", "--out", path("lrf")])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(suggestedRates(r.output).count, 2, r.output)
        XCTAssertEqual(files(in: "lrf"), ["lr_find.csv", "lr_find.svg"])
        assertIncreasingRates(try rows("lrf"))
    }
}

/// The sweep's rates and fastai's two suggestions on loss curves whose answers are known.
final class LearningRateSuggestionTests: XCTestCase {
    let sweep = LearningRateSweep(startRate: 1e-7, endRate: 10, steps: 100)

    func finding(_ smoothed: [Double]) -> LearningRateFinding {
        let points = smoothed.enumerated().map { LearningRatePoint(step: $0 + 1, rate: sweep.rate(at: $0), loss: $1, smoothedLoss: $1) }
        return LearningRateFinding(sweep: sweep, points: points, stop: .diverged(rate: sweep.rate(at: smoothed.count - 1)))
    }

    func testRatesGrowExponentiallyFromStartToEnd() {
        XCTAssertEqual(sweep.rate(at: 0), 1e-7, accuracy: 1e-15)
        XCTAssertEqual(sweep.rate(at: 99), 10, accuracy: 1e-9)
        let ratios = (1..<100).map { sweep.rate(at: $0) / sweep.rate(at: $0 - 1) }
        for r in ratios { XCTAssertEqual(r, pow(1e8, 1.0 / 99), accuracy: 1e-9) }
    }

    /// Flat, a gentle descent with one steep drop after point 29, the minimum at 45, then the
    /// explosion: steepest at 29's rate, minimum / 10 at a tenth of 45's.
    func testSuggestsTheSteepestDescentAndATenthOfTheMinimum() {
        var s = [Double](repeating: 1, count: 20)
        for i in 20...55 {
            let last = s[i - 1]
            s.append(i == 30 ? last - 0.2 : i <= 45 ? last - 0.01 : last + 0.5)
        }
        let f = finding(s)
        XCTAssertEqual(f.steepest!, sweep.rate(at: 29), accuracy: sweep.rate(at: 29) * 1e-12)
        XCTAssertEqual(f.minimumOverTen!, sweep.rate(at: 45) / 10, accuracy: sweep.rate(at: 45) * 1e-12)
    }

    /// A loss that only climbs has its minimum in the first kept step: a tenth of it would fall
    /// below the sweep, so the suggestion is the sweep's start.
    func testSuggestionsStayWithinTheSweep() {
        let f = finding((0..<40).map { 1 + Double($0) * 0.1 })
        XCTAssertEqual(f.minimumOverTen, 1e-7)
        XCTAssertTrue(f.steepest! >= 1e-7 && f.steepest! <= 10)
        XCTAssertNil(finding([1]).steepest, "one point has no slope")
    }
}
