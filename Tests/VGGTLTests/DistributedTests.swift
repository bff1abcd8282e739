import XCTest
import Foundation
@testable import VGGTL

/// Data-parallel training over MPI. The splitting rules are tested in-process; everything else
/// runs the real binary under `mpirun -np 2 --oversubscribe` (two ranks on this machine's cores),
/// as a user would, and is skipped with a message where mpirun is not installed.
final class DistributedTests: VGGTLTestCase {
    var temp: URL!

    override func setUpWithError() throws {
        temp = FileManager.default.temporaryDirectory.appendingPathComponent("vggtl-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: temp) }

    func path(_ name: String) -> String { temp.appendingPathComponent(name).path }

    // MARK: - Splitting (no MPI needed)

    func testShardPlanVisitsEverySampleOnceAndEveryRankStepsAlike() {
        for (samples, ranks, batch) in [(49, 2, 4), (50, 2, 4), (7, 3, 2), (1, 4, 3), (64, 4, 16), (10, 3, 1)] {
            let plans = (0..<ranks).map { ShardPlan.steps(samples: samples, ranks: ranks, batchPerRank: batch, rank: $0) }
            XCTAssertEqual(Set(plans.map(\.count)).count, 1, "every rank steps the same number of times")
            XCTAssertEqual(plans[0].count, (samples + ranks * batch - 1) / (ranks * batch))
            var seen = [Int](repeating: 0, count: samples)
            for plan in plans {
                for s in plan {
                    XCTAssertLessThanOrEqual(s.share, batch)
                    for p in (s.start + s.offset)..<(s.start + s.offset + s.share) { seen[p] += 1 }
                }
            }
            XCTAssertEqual(seen, [Int](repeating: 1, count: samples), "\(samples) samples, \(ranks) ranks x \(batch)")
            // Each step's global batch is the one a single process at ranks x batch visits.
            let single = ShardPlan.steps(samples: samples, ranks: 1, batchPerRank: ranks * batch, rank: 0)
            XCTAssertEqual(single.map(\.start), plans[0].map(\.start))
            XCTAssertEqual(single.map(\.count), plans[0].map(\.count))
            // The shares of the last step differ by at most one.
            let last = plans.map { $0.last!.share }
            XCTAssertLessThanOrEqual(last.max()! - last.min()!, 1)
        }
        // A resumed epoch starts after the samples done, whatever split wrote them.
        let resumed = ShardPlan.steps(samples: 20, from: 6, ranks: 2, batchPerRank: 4, rank: 1)
        XCTAssertEqual(resumed.map(\.start), [6, 14])
        XCTAssertEqual(resumed.map(\.share), [4, 3])
        XCTAssertEqual(ShardPlan.evaluationRange(count: 10, ranks: 3, rank: 0), 0..<4)
        XCTAssertEqual(ShardPlan.evaluationRange(count: 10, ranks: 3, rank: 2), 7..<10)
    }

    func testShardedBatchesEqualTheLoaderOfOneProcessAndResumeAfterPlaceholders() throws {
        let values = (0..<30).map { Float($0) }, labels = (0..<30).map { $0 % 3 }
        let whole = try ArrayBatches(values: values, sampleShape: [1], labels: labels, batchSize: 8, shuffle: true, seed: 4)
        let one = ShardedBatches(whole, rank: 0, ranks: 1)
        XCTAssertEqual(Array(one.batches(epoch: 2)).map(\.indices), Array(whole.batches(epoch: 2)).map(\.indices))
        let quarter = try ArrayBatches(values: values, sampleShape: [1], labels: labels, batchSize: 2, shuffle: true, seed: 4)
        let shards = (0..<4).map { ShardedBatches(quarter, rank: $0, ranks: 4) }
        let perRank = shards.map { Array($0.batches(epoch: 2)).map(\.indices) }
        for k in 0..<one.batchCount {
            XCTAssertEqual(perRank.flatMap { $0[k] }, Array(whole.batches(epoch: 2))[k].indices, "step \(k + 1)")
        }
        // Two batches of 8 done by another split: placeholders, then the rest of the epoch.
        let resumed = ShardedBatches(quarter, rank: 0, ranks: 2)
        resumed.resume = (epoch: 2, skippedBatches: 2, samplesDone: 16)
        let b = Array(resumed.batches(epoch: 2))
        XCTAssertEqual(b.prefix(2).map(\.count), [0, 0])
        // Steps of 4 from sample 16: rank 0 takes 16-17, 20-21, 24-25, and 28 of the last two.
        let order = whole.order(epoch: 2)
        XCTAssertEqual(b.dropFirst(2).flatMap(\.indices), [16, 17, 20, 21, 24, 25, 28].map { order[$0] })
    }

    func testRankDeviceGivesEachLocalRankItsOwnGPUOrAShareOfTheCores() {
        func gpu(_ i: Int) -> OpenCLDeviceInfo {
            OpenCLDeviceInfo(index: i, name: "GPU \(i)", platform: "test", type: .gpu, computeUnits: 1, globalMemoryBytes: 1, maxAllocationBytes: 1,
                             maxWorkGroupSize: 1, driverVersion: "1", version: "OpenCL 3.0")
        }
        XCTAssertEqual(RankDevice.choose(.auto, localRank: 1, localSize: 2, devices: [gpu(0), gpu(1)], cores: 16, threads: nil).choice, .opencl(1))
        XCTAssertEqual(RankDevice.choose(.auto, localRank: 2, localSize: 3, devices: [gpu(0), gpu(1)], cores: 16, threads: nil).choice, .opencl(0))
        let cpu = RankDevice.choose(.auto, localRank: 1, localSize: 4, devices: [], cores: 16, threads: nil)
        XCTAssertEqual(cpu.choice, .cpu)
        XCTAssertEqual(cpu.threads, 4)
        XCTAssertEqual(RankDevice.choose(.cpu, localRank: 0, localSize: 3, devices: [gpu(0)], cores: 2, threads: nil).threads, 1)
        XCTAssertEqual(RankDevice.choose(.opencl(0), localRank: 1, localSize: 2, devices: [gpu(0), gpu(1)], cores: 2, threads: nil).choice, .opencl(0))
        XCTAssertNil(MPILaunch.fromEnvironment([:]), "outside mpirun nothing is distributed")
        XCTAssertEqual(MPILaunch.fromEnvironment(["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "3", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
                                                  "OMPI_COMM_WORLD_LOCAL_SIZE": "2"]), MPILaunch(rank: 3, size: 4, localRank: 1, localSize: 2))
    }

    // MARK: - Under mpirun

    static let mpirun: String? = {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return dirs.map { $0 + "/mpirun" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    func requireMPI() throws -> String {
        guard let m = Self.mpirun else {
            throw XCTSkip("mpirun not found: the 2-rank tests need Open MPI (apt-get install openmpi-bin libopenmpi-dev; .ci/install-deps installs it)")
        }
        return m
    }

    struct Run { var text: String; var status: Int32; var signaled: Bool }

    /// `mpirun -np N vggtl ARGS`; with `perRank`, one `-np 1 OPTIONS vggtl ARGS` group per rank
    /// (mpirun options such as -wdir, and the rank's own arguments, or `args` when empty).
    @discardableResult
    func mpi(_ ranks: Int, _ args: [String], perRank: [(options: [String], args: [String])]? = nil, env: [String: String] = [:], fails: Bool = false,
             binary: URL = vggtlBinary, file: StaticString = #filePath, line: UInt = #line) throws -> Run {
        let r = try start(ranks, args, perRank: perRank, env: env, binary: binary).wait(timeout: childTimeLimit)
        XCTAssertFalse(r.timedOut, "mpirun still ran after \(Int(childTimeLimit)) s", file: file, line: line)
        let ok = r.status == 0 && !r.signaled
        XCTAssertEqual(ok, !fails, "mpirun -np \(ranks) vggtl \(args.joined(separator: " ")) \(fails ? "should fail" : "failed")\n\(r.text)", file: file, line: line)
        return Run(text: r.text, status: r.status, signaled: r.signaled)
    }

    /// `binary`: vggtl, or `faultHarnessBinary` for runs with faults.
    func start(_ ranks: Int, _ args: [String], perRank: [(options: [String], args: [String])]? = nil, env: [String: String] = [:],
               binary: URL = vggtlBinary) throws -> ChildProcess {
        let mpirun = try requireMPI()
        // A test that goes wrong ends in a minute, not after the default 300 s per wait.
        func bounded(_ a: [String]) -> [String] { a.contains("--mpi-timeout") ? a : a + ["--mpi-timeout", "60"] }
        var argv = ["--allow-run-as-root", "--oversubscribe"]
        if let perRank {
            for (i, group) in perRank.enumerated() {
                argv += (i > 0 ? [":"] : []) + ["-np", "1"] + group.options + [binary.path] + bounded(group.args.isEmpty ? args : group.args)
            }
        } else {
            argv += ["-np", "\(ranks)", binary.path] + bounded(args)
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(env) { $1 }
        return try ChildProcess(mpirun, argv, environment: environment, ownProcessGroup: true)
    }

    /// The single-process run, for comparisons.
    @discardableResult
    func single(_ args: [String], env: [String: String] = [:], binary: URL = vggtlBinary, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment.merge(env) { $1 }
        let r = try ChildProcess(binary.path, args, environment: environment, ownProcessGroup: true).wait(timeout: childTimeLimit)
        XCTAssertTrue(r.status == 0 && !r.signaled, "vggtl \(args.joined(separator: " "))\n\(r.text)", file: file, line: line)
        return r.text
    }

    /// 49 feature rows (2x2x8) of 3 learnable classes: 49 is odd, so with 2 ranks x batch 4 the
    /// last step has one sample and rank 1 takes part with an empty share.
    func features(_ name: String = "feat", rows: Int = 49, flipLabel: Int? = nil) throws -> String {
        var g = SeededGenerator(seed: 11)
        var labels = (0..<rows).map { _ in Int(g.next() % 3) }
        var values = (0..<(rows * 32)).map { _ in g.normal() }
        for i in 0..<rows { values[i * 32 + labels[i]] += 2 }
        if let flipLabel { labels[flipLabel] = (labels[flipLabel] + 1) % 3 }
        let dir = temp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try NPY.write(values, shape: [rows, 2, 2, 8], to: dir.appendingPathComponent("features.npy"))
        try NPY.writeInt64(labels, shape: [rows], to: dir.appendingPathComponent("labels.npy"))
        try JSONEncoder().encode(["a", "b", "c"]).write(to: dir.appendingPathComponent("classes.json"))
        return dir.path
    }

    /// Two classes of small JPEGs, `perClass` each: red-ish and blue-ish noise, or (`smooth`)
    /// tinted waves of random frequencies plus noise, so that images differ in their features.
    func images(perClass: Int = 5, smooth: Bool = false) throws -> String {
        let root = temp.appendingPathComponent("img")
        var g = SeededGenerator(seed: 3)
        for (c, name) in ["blue", "red"].enumerated() {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for i in 0..<perClass {
                var px = [UInt8]()
                let fx = g.uniform(0.05, 0.3), fy = g.uniform(0.05, 0.3)
                for p in 0..<(40 * 36) {
                    if smooth {
                        let base = 110 + 60 * sinf(Float(p % 40) * fx) * cosf(Float(p / 40) * fy)
                        for ch in 0..<3 { px.append(UInt8(max(0, min(255, base + (ch == 2 * (1 - c) ? 40 : 0) + g.uniform(-18, 18))))) }
                        continue
                    }
                    let base = Int(g.next() % 120), strong = UInt8(120 + base), weak = UInt8(base / 2)
                    px += c == 1 ? [strong, weak, weak] : [weak, weak, strong]
                }
                try ImageCodec.writeJPEG(RGBImage(width: 40, height: 36, pixels: px), to: dir.appendingPathComponent(String(format: "img%02d.jpg", i)))
            }
        }
        return root.path
    }

    func checkpoint(_ run: String, _ name: String = "last") throws -> (CheckpointInfo, WeightSet) {
        let info = try Checkpoint.load(temp.appendingPathComponent("\(run)/\(name).json"))
        return (info, try WeightFile.load(temp.appendingPathComponent("\(run)/\(info.weightsFile)")))
    }

    /// The largest difference between two runs' arrays relative to each array's magnitude.
    func worstDifference(_ a: String, _ b: String, skipping skip: (String) -> Bool = { _ in false }) throws -> (Float, String) {
        let (_, wa) = try checkpoint(a), (_, wb) = try checkpoint(b)
        var worst: (Float, String) = (0, "")
        for name in wa.names where !skip(name) {
            let e = relativeError(wa[name]!.values, wb[name]!.values)
            if e > worst.0 { worst = (e, name) }
        }
        return worst
    }

    /// `noise`: arrays that hold only rounding noise (a convolution's bias before a BatchNorm in
    /// training mode has a zero gradient in exact arithmetic), compared absolutely.
    func assertSameRun(_ a: String, _ b: String, tol: Float, noise: (String) -> Bool = { _ in false },
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let (ia, wa) = try checkpoint(a), (ib, wb) = try checkpoint(b)
        XCTAssertEqual(ia.epoch, ib.epoch, file: file, line: line)
        for (ra, rb) in zip(ia.history.records, ib.history.records) {
            for (x, y) in [(ra.loss, rb.loss), (ra.accuracy, rb.accuracy), (ra.valLoss ?? 0, rb.valLoss ?? 0), (ra.valAccuracy ?? 0, rb.valAccuracy ?? 0)] {
                XCTAssertEqual(x, y, accuracy: Double(tol) * max(1, abs(x)), "epoch \(ra.epoch) history\n\(ia.history.csv)\n\(ib.history.csv)", file: file, line: line)
            }
        }
        XCTAssertEqual(wa.names, wb.names, file: file, line: line)
        for name in wa.names {
            let x = wa[name]!.values, y = wb[name]!.values
            if tol == 0 { XCTAssertEqual(x, y, "\(name)", file: file, line: line); continue }
            var num: Float = 0, den: Float = 1e-5
            for i in x.indices { num = max(num, abs(x[i] - y[i])); den = max(den, abs(y[i])) }
            if noise(name) {
                XCTAssertLessThanOrEqual(num, tol, "\(name): difference \(num) (rounding noise)", file: file, line: line)
            } else {
                XCTAssertLessThanOrEqual(num / den, tol, "\(name): relative error \(num / den)", file: file, line: line)
            }
        }
    }

    func testTwoRanksAtBatchBEqualOneProcessAtBatch2BWithDropoutAndAnUnevenTail() throws {
        _ = try requireMPI()
        let feat = try features()
        let common = ["train-top", "--device", "cpu", "--features", feat, "--epochs", "3", "--hidden", "16", "--dropout", "0.5",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--val-split", "0.2", "--seed", "7"]
        try single(common + ["--out", path("one"), "--batch", "8"])
        let two = try mpi(2, common + ["--out", path("two"), "--batch", "4", "--mpi-timeout", "60"])
        XCTAssertTrue(two.text.contains("2 ranks x batch 4 = global batch 8"), two.text)
        XCTAssertEqual(two.text.components(separatedBy: "Epoch 1/3").count, 2, "rank 0 alone prints progress\n\(two.text)")
        XCTAssertFalse(two.text.contains("differ from rank 0's"), "weights and optimizer state stay the same on both ranks\n\(two.text)")
        // Same loss curve and weights within float32 reduction-order tolerance.
        try assertSameRun("one", "two", tol: 1e-5)
        let files = try FileManager.default.contentsOfDirectory(atPath: path("two")).sorted()
        XCTAssertEqual(files.filter { !$0.hasSuffix(".safetensors") }, ["best.json", "curves.svg", "history.csv", "last.json"])
        XCTAssertEqual(try checkpoint("two").0.dataParallel, CheckpointInfo.DataParallelRecord(ranks: 2, batchPerRank: 4, samplesDone: nil))
    }

    /// --accumulate under mpirun: 2 ranks x batch 2 x 2 batches per step is one process at
    /// batch 8, the uneven tail included (its last step sums 4 and 3 samples); the gradients
    /// are reduced once per optimiser step, their sums over both batches.
    func testTwoRanksAccumulatingTwoBatchesEqualOneProcessAtTheirGlobalBatch() throws {
        _ = try requireMPI()
        let feat = try features()
        let common = ["train-top", "--device", "cpu", "--features", feat, "--epochs", "2", "--hidden", "16", "--dropout", "0",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--val-split", "0.2", "--seed", "7"]
        try single(common + ["--out", path("one"), "--batch", "8"])
        let two = try mpi(2, common + ["--out", path("two"), "--batch", "2", "--accumulate", "2", "--mpi-timeout", "60"])
        XCTAssertTrue(two.text.contains("gradient accumulation: 2 batches of 2"), two.text)
        XCTAssertFalse(two.text.contains("differ from rank 0's"), two.text)
        try assertSameRun("one", "two", tol: 1e-5)
        XCTAssertEqual(try checkpoint("two").0.optimizerIterations, try checkpoint("one").0.optimizerIterations)
    }

    /// --gradient-compression fp16: gradients travel as half floats. The run stays within fp16's
    /// rounding of the float32 one (and differs from it, so the compression really happened);
    /// gradients beyond fp16's range stop every rank with one message.
    func testFP16GradientCompressionStaysWithinItsRoundingAndStopsOnOverflow() throws {
        _ = try requireMPI()
        let feat = try features()
        let common = ["train-top", "--device", "cpu", "--features", feat, "--epochs", "3", "--hidden", "16", "--dropout", "0",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--seed", "7", "--batch", "4", "--mpi-timeout", "60"]
        try mpi(2, common + ["--out", path("exact")])
        let half = try mpi(2, common + ["--out", path("half"), "--gradient-compression", "fp16"])
        XCTAssertTrue(half.text.contains("as fp16 (--gradient-compression)"), half.text)
        XCTAssertFalse(half.text.contains("differ from rank 0's"), "both ranks apply the same fp16 sums\n\(half.text)")
        let (worst, at) = try worstDifference("exact", "half")
        print("fp16 gradient compression vs float32 after 3 epochs: largest relative difference \(worst) (\(at))")
        XCTAssertGreaterThan(worst, 1e-6, "fp16 sums round: the runs cannot be identical")
        XCTAssertLessThan(worst, 2e-2, "within fp16 rounding (11 significant bits) carried over 21 steps (\(at))")

        // Features of magnitude 1e6: the first Dense kernel's gradient is far beyond 65504.
        var g = SeededGenerator(seed: 5)
        let big = temp.appendingPathComponent("big")
        try FileManager.default.createDirectory(at: big, withIntermediateDirectories: true)
        try NPY.write((0..<(16 * 32)).map { _ in 1e6 * g.uniform(0.5, 1) }, shape: [16, 2, 2, 8], to: big.appendingPathComponent("features.npy"))
        try NPY.writeInt64((0..<16).map { $0 % 3 }, shape: [16], to: big.appendingPathComponent("labels.npy"))
        try JSONEncoder().encode(["a", "b", "c"]).write(to: big.appendingPathComponent("classes.json"))
        let overflow = try mpi(2, ["train-top", "--device", "cpu", "--features", big.path, "--epochs", "1", "--hidden", "16", "--batch", "4",
                                   "--optimizer", "sgd", "--lr", "0.01", "--out", path("overflow"), "--gradient-compression", "fp16",
                                   "--mpi-timeout", "60"], fails: true)
        XCTAssertTrue(overflow.text.contains("fp16 gradient compression") && overflow.text.contains("65504"), overflow.text)
        XCTAssertFalse(overflow.text.contains("did not answer"), "no rank hangs: both stop alike\n\(overflow.text)")
    }

    /// Fine-tuning VGG16-BN's block 5 and a head with dropout, BatchNorm in batch-statistics
    /// mode: 2 ranks x 3 with --sync-bn reproduce 1 x 6 (statistics of the global batch; dropout
    /// masks by position in the global batch) over 2 epochs of steps of 6, 6 and 4 images.
    /// Conditions:
    /// - synchronised BatchNorm (without it each rank normalises its 3 images alone: checked to
    ///   differ);
    /// - the same convolution algorithm on both sides: the CPU picks Winograd or im2col by batch,
    ///   which alone changes gradients by ~1e-2, hence VGGTL_CONV=im2col;
    /// - a well-conditioned network: VGG16-BN trained whole from random weights at 32x32 and a
    ///   batch of 4-8 is not: its gradients through 13 BatchNorms of a few rows each move by
    ///   1-10% when only the order of float additions changes (one process on the CPU against
    ///   one on PoCL, measured), so two correct runs cannot agree there.
    func equivalenceWithBatchNorm(device: String, alsoUnsynchronised: Bool = false) throws {
        _ = try requireMPI()
        let data = try images(perClass: 8, smooth: true)
        var rng = SeededGenerator(seed: 21)
        try KerasH5.write(weightSet(of: try VGG16.trunk(batchNorm: true, on: CPUDevice(), rng: &rng)), to: temp.appendingPathComponent("bn.h5"))
        let common = ["finetune", "--weights", path("bn.h5"), "--bn", "--bn-batch-statistics", "--unfreeze", "block5", "--device", device,
                      "--data", data, "--size", "32x32", "--epochs", "2", "--hidden", "16", "--dropout", "0.5",
                      "--optimizer", "sgd", "--lr", "0.01", "--momentum", "0.9", "--seed", "3"]
        let env = ["VGGTL_CONV": "im2col"]
        try single(common + ["--out", path("one"), "--batch", "6"], env: env)
        try mpi(2, common + ["--out", path("two"), "--batch", "3", "--sync-bn", "--mpi-timeout", "300"], env: env)
        // A convolution's bias before a BatchNorm in batch-statistics mode has a zero gradient
        // in exact arithmetic: it holds rounding noise (~1e-9), compared absolutely.
        let convBias = { (name: String) in name.contains("_conv") && name.hasSuffix("/bias") || name.hasSuffix("bias/velocity") && name.contains("_conv") }
        try assertSameRun("one", "two", tol: 1e-4, noise: convBias)
        let (worst, at) = try worstDifference("one", "two", skipping: convBias)
        print("2 ranks x 3 with --sync-bn vs 1 x 6 on \(device): largest relative difference \(worst) (\(at))")
        guard alsoUnsynchronised else { return }
        try mpi(2, common + ["--out", path("own"), "--batch", "3", "--mpi-timeout", "300"], env: env)
        let (e, name) = try worstDifference("one", "own", skipping: convBias)
        XCTAssertGreaterThan(e, 1e-2, "per-rank BatchNorm statistics differ from the global batch's (\(name))")
    }

    func testTwoRanksWithSyncBNEqualOneProcessOnTheCPU() throws { try equivalenceWithBatchNorm(device: "cpu", alsoUnsynchronised: true) }

    func testTwoRanksWithSyncBNEqualOneProcessOnOpenCL() throws {
        guard !OpenCLDevice.enumerate().isEmpty else { throw XCTSkip("no OpenCL device (install pocl-opencl-icd)") }
        try equivalenceWithBatchNorm(device: "opencl")
    }

    /// `--bn-recalibrate` under mpirun: each rank recalibrates over its shares and the ranks
    /// average, so all end with the same statistics (with --sync-bn nothing else copies rank
    /// 0's, and the end-of-epoch weights check would warn). 12 images, 2 ranks x 3: four local
    /// batches of 3, so the recalibrated mean of block5's first BatchNorm (after frozen blocks)
    /// is the mean of its input over all 12 images, computed here.
    func testBatchNormRecalibrationAgreesOnEveryRank() throws {
        _ = try requireMPI()
        let data = try images(perClass: 6, smooth: true)
        var rng = SeededGenerator(seed: 21)
        try KerasH5.write(weightSet(of: try VGG16.trunk(batchNorm: true, on: CPUDevice(), rng: &rng)), to: temp.appendingPathComponent("bn.h5"))
        let out = try mpi(2, ["finetune", "--weights", path("bn.h5"), "--bn", "--bn-batch-statistics", "--unfreeze", "block5", "--device", "cpu",
                              "--data", data, "--size", "32x32", "--epochs", "1", "--hidden", "16", "--optimizer", "sgd", "--lr", "0.01",
                              "--seed", "3", "--batch", "3", "--sync-bn", "--bn-recalibrate", "--out", path("two"), "--mpi-timeout", "300"])
        XCTAssertTrue(out.text.contains("BatchNorm statistics recalibrated over 4 training batches"), out.text)
        XCTAssertFalse(out.text.contains("differ from rank 0"), "every rank holds the same statistics\n\(out.text)")
        let device = try CPUDevice()
        let (info, model) = try Checkpoint.restore(temp.appendingPathComponent("two/last.json"), on: device)
        let bn = try XCTUnwrap(model.layers.compactMap { $0 as? BatchNormalization }.first { $0.name.hasPrefix("block5") })
        let node = try XCTUnwrap(model.network.inputs(of: XCTUnwrap(model.network.node(named: bn.name))).first)
        var sum = [Double](repeating: 0, count: bn.movingMean.count), rows = 0
        for batch in BatchLoader(source: try ClassFolderSource(directory: URL(fileURLWithPath: data)), batchSize: 12, input: info.input,
                                 shuffle: false, seed: 0).batches(epoch: 0) {
            let x = try Tensor(batch.x, shape: [batch.count] + info.model.inputShape, on: device)
            let y = try model.network.forward(x, .inference, upTo: node).toArray()
            for (i, v) in y.enumerated() { sum[i % sum.count] += Double(v) }
            rows += y.count / sum.count
        }
        let expected = sum.map { $0 / Double(rows) }, moving = bn.movingMean.toArray()
        let worst = zip(moving, expected).map { abs(Double($0) - $1) / max(abs($1), 1e-3) }.max()!
        XCTAssertLessThan(worst, 1e-4, "\(bn.name)'s recalibrated mean is the mean over both ranks' batches")
    }

    func testExtractAndEvaluateShareTheImagesAndGatherOnRankZero() throws {
        _ = try requireMPI()
        let data = try images(perClass: 4)
        var rng = SeededGenerator(seed: 9)
        let trunk = try VGG16.trunk(batchNorm: false, on: CPUDevice(), rng: &rng)
        try KerasH5.write(weightSet(of: trunk), to: temp.appendingPathComponent("trunk.h5"))
        let args = ["extract", "--device", "cpu", "--weights", path("trunk.h5"), "--data", data, "--size", "32x32", "--batch", "3"]
        try single(args + ["--out", path("f1")])
        try mpi(2, args + ["--out", path("f2")])
        let a = try NPY.read(temp.appendingPathComponent("f1/features.npy")), b = try NPY.read(temp.appendingPathComponent("f2/features.npy"))
        XCTAssertEqual(a.shape, b.shape)
        assertClose(b.values, a.values, tol: 1e-4, "features gathered in order")
        XCTAssertEqual(try NPY.read(temp.appendingPathComponent("f1/labels.npy")).values, try NPY.read(temp.appendingPathComponent("f2/labels.npy")).values)
        let j1 = try Data(contentsOf: temp.appendingPathComponent("f1/features.json")), j2 = try Data(contentsOf: temp.appendingPathComponent("f2/features.json"))
        XCTAssertEqual(j1, j2, "the same files, in the same order")
        // A head on the features, then evaluate on the images under 2 ranks: the same report.
        try single(["train-top", "--device", "cpu", "--features", path("f1"), "--out", path("top"), "--epochs", "5", "--batch", "4"])
        let e1 = try single(["evaluate", "--device", "cpu", "--model", path("top"), "--data", data, "--batch", "3"])
        let e2 = try mpi(2, ["evaluate", "--device", "cpu", "--model", path("top"), "--data", data, "--batch", "3"]).text
        // Under mpirun rank 0's stdout is a terminal: the transient validation bar is drawn and erased with \r.
        func table(_ s: String) -> [String] {
            s.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init).filter { $0.contains("|") || $0.hasPrefix("accuracy") }
        }
        XCTAssertFalse(table(e1).isEmpty, e1)
        XCTAssertEqual(table(e1), table(e2), "\(e1)\n---\n\(e2)")
    }

    /// Ctrl-C on mpirun (or SIGTERM to it): mpirun sends the ranks SIGTERM (after
    /// odls_base_sigkill_timeout seconds, then SIGKILL as long after); they agree on the step to
    /// stop after, rank 0 writes one checkpoint, and --resume equals an uninterrupted run.
    func testSIGINTOnTheJobLeavesOneCheckpointAndResumeEqualsUninterruptedRun() throws {
        _ = try requireMPI()
        let feat = try features(rows: 64)
        let common = ["train-top", "--device", "cpu", "--features", feat, "--epochs", "2", "--batch", "4", "--hidden", "16",
                      "--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9", "--mpi-timeout", "60"]
        try mpi(2, common + ["--out", path("full")])
        let job = try start(2, common + ["--out", path("cut")],
                            env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "3:WAIT", "OMPI_MCA_odls_base_sigkill_timeout": "5"], binary: faultHarnessBinary)
        XCTAssertTrue(job.read(until: "waiting for a signal", timeout: childTimeLimit), "the job reached batch 3")
        job.signal(SIGINT)
        let r = job.wait(timeout: childTimeLimit)
        XCTAssertTrue(r.text.contains("interrupted by SIGTERM in epoch 1 after batch 4 of 8"), r.text)
        let (info, _) = try checkpoint("cut")
        XCTAssertEqual(info.batchesDone, 4)
        XCTAssertEqual(info.dataParallel, CheckpointInfo.DataParallelRecord(ranks: 2, batchPerRank: 4, samplesDone: 32))
        let resumed = try mpi(2, common + ["--out", path("cut"), "--resume"])
        XCTAssertTrue(resumed.text.contains("resuming"), resumed.text)
        try assertSameRun("full", "cut", tol: 0)
    }

    /// A SIGTERM to one rank alone (a scheduler signalling a task) stops every rank after the
    /// same step; resumed by one process at the same global batch... or another: no sample of
    /// the interrupted epoch is dropped or doubled.
    func testResumeUnderAnotherNumberOfRanksVisitsEverySampleOnce() throws {
        _ = try requireMPI()
        let feat = try features(rows: 30)
        let common = ["train-top", "--device", "cpu", "--features", feat, "--epochs", "2", "--hidden", "16", "--mpi-timeout", "60"]
        let log = path("samples.log")
        let cut = try mpi(2, common + ["--out", path("run"), "--batch", "3"], perRank: [([], []), (["-x", "VGGTL_TEST_INTERRUPT_AFTER_BATCHES=2:TERM"], [])],
                          env: ["VGGTL_TEST_SAMPLE_LOG": log], fails: true, binary: faultHarnessBinary)
        XCTAssertTrue(cut.text.contains("interrupted by SIGTERM in epoch 1 after batch 3 of 5"), cut.text)
        XCTAssertEqual(try checkpoint("run").0.dataParallel?.samplesDone, 18)
        let resumed = try single(common + ["--out", path("run"), "--batch", "4", "--resume"], env: ["VGGTL_TEST_SAMPLE_LOG": log],
                                 binary: faultHarnessBinary)
        XCTAssertTrue(resumed.contains("global batch of 2 ranks x batch 3 = 6; this run's is 1 rank x batch 4 = 4"), resumed)
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        let epoch0 = lines.filter { $0.hasPrefix("0 ") }.map { Int($0.split(separator: " ")[1])! }
        XCTAssertEqual(epoch0.sorted(), Array(0..<30), "every sample of the interrupted epoch once")
        let (info, _) = try checkpoint("run")
        XCTAssertEqual(info.epoch, 2)
        XCTAssertEqual(info.history.records.count, 2)
    }

    func testARankThatHangsEndsTheJobWithAMessageNamingIt() throws {
        _ = try requireMPI()
        let feat = try features()
        let r = try mpi(2, ["train-top", "--device", "cpu", "--features", feat, "--out", path("run"), "--epochs", "2", "--batch", "4", "--mpi-timeout", "4"],
                        env: ["VGGTL_TEST_MPI_FAIL": "1:3:hang"], fails: true, binary: faultHarnessBinary)
        XCTAssertTrue(r.text.contains("rank 0 of 2: rank 1 (pid"), r.text)
        XCTAssertTrue(r.text.contains("did not join step 3's totals") && r.text.contains("within 4 s") && r.text.contains("hung or died"), r.text)
    }

    func testARankThatDiesEndsTheJobWithAMessageNamingIt() throws {
        _ = try requireMPI()
        let feat = try features()
        let r = try mpi(2, ["train-top", "--device", "cpu", "--features", feat, "--out", path("run"), "--epochs", "3", "--batch", "4", "--mpi-timeout", "60"],
                        env: ["VGGTL_TEST_MPI_FAIL": "1:9:die"], fails: true, binary: faultHarnessBinary)
        XCTAssertTrue(r.text.contains("rank 1") && r.text.contains("signal 9"), r.text)
        // Epoch 1 (7 steps) was saved; the job ended in epoch 2 without touching it.
        XCTAssertEqual(try checkpoint("run").0.epoch, 1)
    }

    /// Each rank hashes its flags, data, weights and position and compares them with rank 0's.
    /// Different files behind the same paths (what two nodes without a shared filesystem can
    /// have) come from running each rank in its own working directory.
    func testRanksThatDisagreeOnFlagsDataOrWeightsStopAtStart() throws {
        _ = try requireMPI()
        let base = ["train-top", "--device", "cpu", "--out", path("run"), "--epochs", "1", "--batch", "4", "--mpi-timeout", "60"]
        _ = try features("a/feat")
        _ = try features("b/feat", flipLabel: 5)
        let flags = try mpi(2, [], perRank: [([], base + ["--features", path("a/feat"), "--lr", "1e-3"]), ([], base + ["--features", path("a/feat"), "--lr", "2e-3"])], fails: true)
        XCTAssertTrue(flags.text.contains("rank 1's command-line flags differ from rank 0's"), flags.text)
        let data = try mpi(2, base + ["--features", "feat"], perRank: [(["-wdir", path("a")], []), (["-wdir", path("b")], [])], fails: true)
        XCTAssertTrue(data.text.contains("rank 1's training data differ from rank 0's"), data.text)
        XCTAssertFalse(data.text.contains("flags"), data.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run/last.json")), "nothing trained")
        let images = try images(perClass: 2)
        for (dir, seed) in [("a", UInt64(1)), ("b", 2)] {
            var rng = SeededGenerator(seed: seed)
            try KerasH5.write(weightSet(of: try VGG16.trunk(batchNorm: false, on: CPUDevice(), rng: &rng)), to: temp.appendingPathComponent("\(dir)/trunk.h5"))
        }
        let weights = try mpi(2, ["finetune", "--device", "cpu", "--weights", "trunk.h5", "--data", images, "--size", "32x32", "--out", path("ft"), "--epochs", "1"],
                              perRank: [(["-wdir", path("a")], []), (["-wdir", path("b")], [])], fails: true)
        XCTAssertTrue(weights.text.contains("rank 1's model weights and optimizer state differ from rank 0's"), weights.text)
    }

    func testDevicesUnderMPIShowsEachRanksChoice() throws {
        _ = try requireMPI()
        let r = try mpi(2, ["devices", "--device", "cpu"])
        XCTAssertTrue(r.text.contains("rank 0") && r.text.contains("rank 1"), r.text)
        XCTAssertTrue(r.text.contains("cpu with 1 of the node's"), r.text)
        let refused = try mpi(2, ["summary"], fails: true)
        XCTAssertTrue(refused.text.contains("does not split its work between ranks"), refused.text)
    }

    /// Issue 22, item 10: under mpirun the validation shows the figures of all ranks (the
    /// reduced val_loss and val_acc), never one rank's share as a progress line.
    func testValidationShowsNoOneRanksShare() throws {
        _ = try requireMPI()
        let feat = try features()
        let r = try mpi(2, ["train-top", "--device", "cpu", "--features", feat, "--out", path("run"), "--epochs", "2", "--batch", "4",
                            "--hidden", "16", "--val-split", "0.3", "--mpi-timeout", "60"])
        let lines = r.text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).map(String.init)
        XCTAssertEqual(lines.filter { $0.hasPrefix("val_loss:") }.count, 2, r.text)
        XCTAssertEqual(lines.filter { $0.contains("validation") && $0.contains("acc:") }, [], "no per-rank validation line\n\(r.text)")
    }

    /// Issue 22, item 1, under mpirun: rank 0 takes --out for the job; a folder that another
    /// process holds stops the whole job at once with a message naming that process.
    func testAJobIntoAFolderInUseStopsNamingItsHolder() throws {
        _ = try requireMPI()
        let feat = try features()
        let common = ["train-top", "--device", "cpu", "--features", feat, "--out", path("run"), "--epochs", "2", "--batch", "4", "--hidden", "16"]
        var environment = ProcessInfo.processInfo.environment
        environment["VGGTL_TEST_INTERRUPT_AFTER_BATCHES"] = "1:WAIT"
        let holder = try ChildProcess(faultHarnessBinary.path, common, environment: environment, ownProcessGroup: true)
        XCTAssertTrue(holder.read(until: "waiting for a signal", timeout: childTimeLimit))
        let job = try mpi(2, common + ["--mpi-timeout", "60"], fails: true)
        XCTAssertTrue(job.text.contains("--out \(path("run")) is in use") && job.text.contains("pid \(holder.pid)"), job.text)
        holder.signal(SIGINT)
        XCTAssertEqual(holder.wait(timeout: childTimeLimit).status, 130)
        let resumed = try mpi(2, common + ["--mpi-timeout", "60", "--resume"])
        XCTAssertTrue(resumed.text.contains("resuming"), resumed.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("run/.vggtl.lock")), "rank 0 released the folder")
    }
}
