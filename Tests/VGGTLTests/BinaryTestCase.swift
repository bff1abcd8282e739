import XCTest
import Foundation
import VGGTL

/// The base of tests that run the real `vggtl` binary as a user does: a temporary folder per
/// test, the binary run with its output collected, and small data written here (feature files
/// for the fast head-training cases, JPEG class folders for the image cases).
class BinaryTestCase: VGGTLTestCase {
    var temp: URL!

    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-bin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    func path(_ name: String) -> String { temp.appendingPathComponent(name).path }
    func url(_ name: String) -> URL { temp.appendingPathComponent(name) }

    // MARK: - Running the binary

    static var binary: URL { vggtlBinary }

    struct Result {
        var status: Int32
        var signaled: Bool
        var output: String
        var errorLines: [Substring] { output.split(separator: "\n").filter { $0.hasPrefix("vggtl: error") } }
    }

    /// Runs vggtl (or, with `shell`, a bash line in which $VGGTL is the binary); stdout and stderr together.
    /// `binary`: another build of the commands, such as `faultHarnessBinary`.
    func run(_ args: [String], env: [String: String] = [:], shell: String? = nil, binary: URL? = nil,
             whileRunning: ((ChildProcess) -> Void)? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let binary = binary ?? Self.binary
        var environment = ProcessInfo.processInfo.environment
        environment["VGGTL"] = binary.path
        for (k, v) in env { environment[k] = v }
        let p = try shell.map { try ChildProcess("/bin/bash", ["-c", $0 + " " + args.map { "'\($0)'" }.joined(separator: " ")], environment: environment, ownProcessGroup: true) }
            ?? ChildProcess(binary.path, args, environment: environment, ownProcessGroup: true)
        whileRunning?(p)
        let r = p.wait(timeout: childTimeLimit)
        XCTAssertFalse(r.timedOut, "vggtl \(args.joined(separator: " ")) still ran after \(Int(childTimeLimit)) s:\n\(r.text)", file: file, line: line)
        return Result(status: r.status, signaled: r.signaled, output: r.text)
    }

    /// A user mistake: exit status 1, one error line that contains every needle, no crash report.
    func assertCleanError(_ r: Result, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.output, file: file, line: line)
        XCTAssertFalse(r.signaled, r.output, file: file, line: line)
        XCTAssertEqual(r.errorLines.count, 1, r.output, file: file, line: line)
        for n in needles { XCTAssertTrue(r.output.contains(n), "expected '\(n)' in:\n\(r.output)", file: file, line: line) }
        XCTAssertFalse(r.output.contains("Fatal error") || r.output.contains("Stack dump") || r.output.contains("Backtrace"), r.output, file: file, line: line)
    }

    // MARK: - Data written here

    /// features.npy [rows, 1, 1, width], labels.npy, classes.json: a learnable task.
    func writeFeatures(_ name: String, rows: Int = 40, width: Int = 8, classes: [String] = ["cats", "dogs"], seed: UInt64 = 1) throws -> String {
        let dir = url(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var g = SeededGenerator(seed: seed)
        var values: [Float] = [], labels: [Int] = []
        for i in 0..<rows {
            let c = i % classes.count
            labels.append(c)
            for j in 0..<width { values.append(g.uniform(-1, 1) + (j % classes.count == c ? 1.5 : 0)) }
        }
        try NPY.write(values, shape: [rows, 1, 1, width], to: dir.appendingPathComponent("features.npy"))
        try NPY.writeInt64(labels, shape: [rows], to: dir.appendingPathComponent("labels.npy"))
        try JSONEncoder().encode(classes).write(to: dir.appendingPathComponent("classes.json"))
        return dir.path
    }

    func noiseImage(width: Int, height: Int, seed: UInt64, red: Bool) -> RGBImage {
        var g = SeededGenerator(seed: seed)
        var px = [UInt8]()
        for _ in 0..<(width * height) {
            let base = Int(g.next() % 120)
            let strong = UInt8(120 + base), weak = UInt8(base / 2)
            px += red ? [strong, weak, weak] : [weak, weak, strong]
        }
        return RGBImage(width: width, height: height, pixels: px)
    }

    /// Two class folders of small JPEGs.
    func writeImages(_ name: String, perClass: Int = 8, classes: [String] = ["cats", "dogs"]) throws -> URL {
        let root = url(name)
        for (c, cls) in classes.enumerated() {
            let dir = root.appendingPathComponent(cls)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<perClass {
                try ImageCodec.writeJPEG(noiseImage(width: 36, height: 32, seed: UInt64(c * 100 + i), red: c == 0),
                                         to: dir.appendingPathComponent(String(format: "img%02d.jpg", i)))
            }
        }
        return root
    }

    func put(_ bytes: [UInt8], _ relative: String, in root: URL) throws {
        let u = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: u)
    }

    /// A run's weights (and optimizer state) by name.
    func weights(_ run: String, _ checkpoint: String = "last") throws -> [String: [Float]] {
        let info = try Checkpoint.load(url(run).appendingPathComponent("\(checkpoint).json"))
        let set = try WeightFile.load(url(run).appendingPathComponent(info.weightsFile))
        return Dictionary(uniqueKeysWithValues: set.tensors.map { ($0.name, $0.values) })
    }

    func files(in name: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path(name))) ?? []).sorted()
    }

    var headFlags: [String] { ["--device", "cpu", "--batch", "8", "--hidden", "16", "--optimizer", "adam", "--lr", "1e-2", "--seed", "7"] }

    func requireOpenCL() throws {
        guard !OpenCLDevice.enumerate().isEmpty else { throw XCTSkip("no OpenCL device") }
    }
}
