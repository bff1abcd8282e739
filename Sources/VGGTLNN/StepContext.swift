/// What the layers of one step need to know about it, passed to every forward and backward
/// instead of being written on the layers between steps: whoever runs the step builds it (the
/// Trainer; data-parallel training adds the samples' place in the global batch and the shared
/// batch statistics), and the network completes it per node with the epilogue its memory plan
/// fused into the layer.
public struct StepContext {
    /// Layers train: batch statistics, dropout, and the step keeps what backward needs.
    public var isTraining: Bool
    /// Where this batch's first sample sits in the global batch of a data-parallel step: dropout
    /// draws each sample's mask from its global position, so the masks are those one process
    /// would draw for the whole batch (0 in a single process).
    public var sampleOffset: Int
    /// Batch statistics (and their backward) over the batches of all processes (`--sync-bn`);
    /// nil: each process normalises with its own batch's.
    public var statisticsSync: BatchStatisticsSync?
    /// Set by the network for one node: an activation the layer applies to its output as it
    /// writes it (a following ReLU fused into it, see `LayerMemory.epilogues`) ...
    public var epilogue: Activation = .linear
    /// ... and on that ReLU: its input's layer applied it already, so its output is its input.
    public var appliedByInput = false
    /// A pass of BatchNorm recalibration (precise BatchNorm, `Trainer.recalibrateBatchNorm`):
    /// this forward is the pass's `k`-th batch (from 1). With `isTraining` false (no dropout,
    /// nothing kept for a backward), every BatchNorm layer that trains its statistics
    /// normalises with this batch's statistics and sets its moving statistics to the mean over
    /// the pass's batches so far; nil: an ordinary step.
    public var recalibrationBatch: Int?

    public init(training: Bool, sampleOffset: Int = 0, statisticsSync: BatchStatisticsSync? = nil) {
        isTraining = training; self.sampleOffset = sampleOffset; self.statisticsSync = statisticsSync
    }

    /// A training step in one process.
    public static var training: StepContext { StepContext(training: true) }
    /// Inference: moving statistics, no dropout, nothing kept for a backward.
    public static var inference: StepContext { StepContext(training: false) }
    /// The `k`-th batch (from 1) of a BatchNorm recalibration pass.
    public static func recalibration(batch k: Int) -> StepContext {
        var c = StepContext(training: false)
        c.recalibrationBatch = k
        return c
    }
}
