import XCTest
import Foundation
import VGGTL

/// Issue 22, item 1: a command that writes into `--out` takes the folder for itself. A second
/// one stops with a message naming the first; the lock goes when the first ends (finished,
/// interrupted or failed), and a lock left by a killed process does not block its folder.
final class RunFolderLockTests: BinaryTestCase {
    var lockFile: String { path("run/.vggtl.lock") }

    /// A train-top run into `run` that stops after its `batches`-th batch and waits for a signal.
    func startWaitingRun(_ feat: String, batches: Int, then body: @escaping (ChildProcess) throws -> Void) throws -> Result {
        try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3"] + headFlags,
                env: ["VGGTL_TEST_INTERRUPT_AFTER_BATCHES": "\(batches):WAIT"], binary: faultHarnessBinary) { process in
            XCTAssertTrue(process.read(until: "vggtl-test: waiting for a signal", timeout: childTimeLimit))
            do { try body(process) } catch { XCTFail("\(error)") }
        }
    }

    func testASecondCommandIntoTheSameOutStopsNamingTheFirstUntilCtrlCReleasesIt() throws {
        let feat = try writeFeatures("feat")
        let images = try writeImages("images", perClass: 2)
        let first = try startWaitingRun(feat, batches: 1) { [self] process in
            let holder = "pid \(process.pid)"
            let again = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1"] + headFlags)
            assertCleanError(again, ["--out", path("run"), "in use", holder, "train-top"])
            let resumed = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--resume"] + headFlags)
            assertCleanError(resumed, ["--out", holder])
            assertCleanError(try run(["finetune", "--device", "cpu", "--weights", "none", "--data", images.path, "--size", "32x32",
                                      "--epochs", "1", "--out", path("run")]), ["--out", holder])
            assertCleanError(try run(["extract", "--device", "cpu", "--weights", "none", "--data", images.path, "--size", "32x32",
                                      "--out", path("run")]), ["--out", holder])
            assertCleanError(try run(["compare", "--device", "cpu", "--weights", "none", "--data", images.path, "--size", "32x32",
                                      "--seeds", "1", "--out", path("run")]), ["--out", holder])
            assertCleanError(try run(["demo", "--device", "cpu", "--data", path("no-such-data"), "--out", path("run")]), ["--out", holder])
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("run/last.json")), "the refused commands wrote nothing")
            process.signal(SIGINT)
        }
        XCTAssertEqual(first.status, 130, first.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile), "Ctrl-C releases the folder")
        let resumed = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--resume"] + headFlags)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile), "a finished run releases the folder")
    }

    /// kill -9 leaves the lock file behind with a process that no longer runs: --resume takes
    /// the folder over.
    func testALockLeftByAKilledRunDoesNotBlockResume() throws {
        let feat = try writeFeatures("feat")
        // 40 rows, batch 8: 5 batches per epoch; it waits in epoch 2, after epoch 1's checkpoint.
        let killed = try startWaitingRun(feat, batches: 6) { process in process.signal(SIGKILL) }
        XCTAssertTrue(killed.signaled, killed.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: lockFile), "the killed process could not remove its lock")
        let resumed = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--resume"] + headFlags)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssertEqual(try Checkpoint.load(url("run/last.json")).epoch, 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile))
    }

    /// A run that stops with an error gives the folder back.
    func testAnErrorExitReleasesTheFolder() throws {
        let feat = try writeFeatures("feat")
        let flags = ["--device", "cpu", "--batch", "8", "--hidden", "16", "--optimizer", "sgd", "--seed", "7"]
        XCTAssertEqual(try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "1", "--lr", "0.01"] + flags).status, 0)
        let r = try run(["train-top", "--features", feat, "--out", path("run"), "--epochs", "3", "--lr", "1e30", "--resume"] + flags)
        assertCleanError(r, ["loss became"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: lockFile), r.output)
        XCTAssertEqual(files(in: "run").filter { !$0.hasSuffix(".safetensors") }, ["curves.svg", "history.csv", "last.json"])
    }
}
