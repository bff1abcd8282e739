import VGGTLData

/// Hooks into a training run, as Keras callbacks are: a `Trainer` calls each of its `callbacks`
/// at these points, in order. For logging, stopping from outside, or (the test harness,
/// Tests/FaultHarness) putting faults into a real run. Every method has an empty default.
public protocol TrainingCallback: AnyObject {
    /// Batch `index` (1-based) of `epoch` (0-based) is about to be trained: its samples are
    /// `batch.indices` (empty for a data-parallel rank whose share of the step is empty).
    /// Batches a resumed run skips are not reported.
    func trainBatchBegin(_ trainer: Trainer, epoch: Int, index: Int, batch: Batch)
    /// The batch is trained and counted, before a pending stop request (Ctrl-C, SIGTERM) is acted on.
    func trainBatchEnd(_ trainer: Trainer, epoch: Int, index: Int)
    /// A checkpoint (`name`: "last", "best") that `TrainingRun` saves for this trainer reached `stage`.
    func checkpointProgress(_ trainer: Trainer, name: String, stage: CheckpointStage)
}

extension TrainingCallback {
    public func trainBatchBegin(_ trainer: Trainer, epoch: Int, index: Int, batch: Batch) {}
    public func trainBatchEnd(_ trainer: Trainer, epoch: Int, index: Int) {}
    public func checkpointProgress(_ trainer: Trainer, name: String, stage: CheckpointStage) {}
}

/// How far `Checkpoint.save` has got; the raw values name the points for tests.
public enum CheckpointStage: String, Sendable, CaseIterable {
    /// The arrays file is written under its fresh name; the JSON that names it is not.
    case arraysWritten = "checkpoint-arrays"
    /// The new JSON is complete under its temporary name, not yet renamed over the old one.
    case jsonWritten = "checkpoint-json"
}
