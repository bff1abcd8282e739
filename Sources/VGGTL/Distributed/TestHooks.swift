import Foundation

/// Environment variables the data-parallel tests use to reach real failure paths; none changes
/// anything when unset (RELIABILITY.md lists them).
enum DistributedTestHooks {
    /// `VGGTL_TEST_MPI_FAIL=RANK:STEP:die|hang`: rank RANK, at its STEP-th training step (from 1),
    /// kills itself with SIGKILL, or stops answering (sleeps until it is killed).
    static let failure: (rank: Int, step: Int, hang: Bool)? = {
        guard let text = ProcessInfo.processInfo.environment["VGGTL_TEST_MPI_FAIL"] else { return nil }
        let p = text.split(separator: ":")
        guard p.count == 3, let r = Int(p[0]), let s = Int(p[1]) else { return nil }
        return (r, s, p[2] == "hang")
    }()
    nonisolated(unsafe) static var steps = 0

    static func stepStarted(rank: Int) {
        steps += 1
        guard let f = failure, f.rank == rank, f.step == steps else { return }
        if !f.hang { kill(getpid(), SIGKILL) }
        while true { sleep(1) }
    }

    /// `VGGTL_TEST_SAMPLE_LOG=FILE`: every training sample handed to this process is appended
    /// as "epoch index" (O_APPEND: ranks may share the file).
    static let sampleLog: Int32? = {
        guard let path = ProcessInfo.processInfo.environment["VGGTL_TEST_SAMPLE_LOG"] else { return nil }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        return fd >= 0 ? fd : nil
    }()

    static func log(epoch: Int, _ batch: Batch) {
        guard let fd = sampleLog, !batch.indices.isEmpty else { return }
        let text = batch.indices.map { "\(epoch) \($0)\n" }.joined()
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }
}
