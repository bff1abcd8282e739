import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLModels

/// How a Trainer takes part in data-parallel training: Distributed/DataParallel implements it
/// over MPI. A trainer without one runs as a single process, exactly as before.
public protocol TrainingCoordinator: AnyObject {
    /// This process prints progress and writes the run folder (rank 0).
    var isPrimary: Bool { get }
    /// Before a step's forward: the batch to run, the loss's gradient scale, and the context of
    /// the step's forward and backward (the batch's place in the global batch, shared batch
    /// statistics). Every process takes part in every step, so a process whose share of the step
    /// is empty runs a stand-in batch with gradient scale 0.
    func prepareStep(_ batch: Batch, model: Model) throws -> (batch: Batch, gradientScale: Float, context: StepContext)
    /// After the loss, before backward: this process's totals in, all processes' out (a NaN loss
    /// anywhere, or a stop signal anywhere, is then known to all).
    func agree(_ local: StepTotals) throws -> StepTotals
    /// The network's backward hook (CONTRACTS.md section 2): starts reducing finished gradients.
    func gradientsReady(_ parameters: [Parameter])
    /// After backward, before the update: every process then holds the same gradients.
    func finishGradients(_ parameters: [Parameter]) throws
    /// After the backward of an accumulated step's last batch (`--accumulate`), whose gradients
    /// are each process's sums over its samples of the step's batches: every process then holds
    /// their mean over `samples`, the samples of all processes in the step.
    func finishAccumulatedGradients(_ parameters: [Parameter], samples: Int) throws
    /// Evaluation metrics summed over the processes (each evaluated its share).
    func reduce(_ metrics: EpochMetrics) throws -> EpochMetrics
    /// After a BatchNorm recalibration pass (`Trainer.recalibrateBatchNorm`) over this
    /// process's `batches` batches, `statistics` (its moving means and variances) in; out, in
    /// place: the mean of every process's, weighted by their batches, the same on every
    /// process. Returns the batches of all processes.
    func averageRecalibratedStatistics(_ statistics: [Tensor], batches: Int) throws -> Int
    /// After an epoch's last step, before validation and the checkpoint.
    func epochEnded(model: Model, optimizer: Optimizer) throws
    /// The stop signal any process received (0: none); asked at every epoch end.
    func agreeOnStop(_ signal: Int32) throws -> Int32
    /// Called on every process once the primary has written the checkpoint of an interruption:
    /// no process exits before it is on disk.
    func checkpointWritten() throws
}

/// One step's totals: loss summed over samples, correct predictions, samples, whether a loss was
/// not finite, and the stop signal received (0: none).
public struct StepTotals: Sendable, Equatable {
    public var lossSum: Double, correct: Int, samples: Int, nonFinite: Bool, signal: Int32
    public init(lossSum: Double, correct: Int, samples: Int, nonFinite: Bool, signal: Int32) {
        self.lossSum = lossSum; self.correct = correct; self.samples = samples; self.nonFinite = nonFinite; self.signal = signal
    }
}
