import Foundation
import VGGTL

/// After this process's N-th training batch (counted over all its trainers: a two-stage
/// fine-tuning has two), raise a signal through the real handler, or wait for one from outside.
final class InterruptAfterBatches: TrainingCallback {
    let batches: Int
    /// nil: print "vggtl-test: waiting for a signal" and wait for one.
    let signal: Int32?
    private var done = 0

    /// "N", "N:TERM" or "N:WAIT".
    init?(parsing text: String) {
        let parts = text.split(separator: ":")
        guard let n = parts.first.flatMap({ Int($0) }), n >= 1 else { return nil }
        let kind = parts.count > 1 ? parts[1].uppercased() : "INT"
        batches = n
        signal = kind == "WAIT" ? nil : kind == "TERM" ? SIGTERM : SIGINT
    }

    func trainBatchEnd(_ trainer: Trainer, epoch: Int, index: Int) {
        done += 1
        guard done == batches else { return }
        if let signal {
            raise(signal)
        } else {
            print("vggtl-test: waiting for a signal")
            flushStandardOutput()
            for _ in 0..<600 where TrainingInterrupt.pending == nil { usleep(100_000) }
        }
    }
}

/// SIGKILL the N-th time a checkpoint save reaches the named stage ("kill -9 at any moment").
final class CrashAtCheckpointStage: TrainingCallback {
    let stage: CheckpointStage
    let count: Int
    private var passed = 0

    /// "checkpoint-arrays[:N]" or "checkpoint-json[:N]".
    init?(parsing text: String) {
        let parts = text.split(separator: ":")
        guard let name = parts.first, let stage = CheckpointStage(rawValue: String(name)) else { return nil }
        self.stage = stage
        count = parts.count > 1 ? Int(parts[1]) ?? 1 : 1
    }

    func checkpointProgress(_ trainer: Trainer, name: String, stage: CheckpointStage) {
        guard stage == self.stage else { return }
        passed += 1
        if passed == count { kill(getpid(), SIGKILL) }
    }
}

/// Under mpirun: this rank, at its STEP-th training step, dies (SIGKILL) or hangs (sleeps until
/// it is killed), before it joins the step's reductions.
final class RankFailure: TrainingCallback {
    let step: Int
    let hang: Bool
    private var steps = 0

    /// "RANK:STEP:die|hang"; nil when the fault is for another rank.
    init?(parsing text: String, rank: Int) {
        let p = text.split(separator: ":")
        guard p.count == 3, let r = Int(p[0]), let s = Int(p[1]), r == rank else { return nil }
        step = s
        hang = p[2] == "hang"
    }

    func trainBatchBegin(_ trainer: Trainer, epoch: Int, index: Int, batch: Batch) {
        steps += 1
        guard steps == step else { return }
        if !hang { kill(getpid(), SIGKILL) }
        while true { sleep(1) }
    }
}

/// Appends every training sample this process trains on to a file, as "epoch index" lines.
final class SampleLog: TrainingCallback {
    let fd: Int32

    init?(path: String) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if fd < 0 { return nil }
    }

    func trainBatchBegin(_ trainer: Trainer, epoch: Int, index: Int, batch: Batch) {
        guard !batch.indices.isEmpty else { return }
        let text = batch.indices.map { "\(epoch) \($0)\n" }.joined()
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }
}
