import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels
/// How a `TrainingSession`'s process takes part in a job of several: which batches it trains
/// on and how its trainer joins the others. Distributed's MPI sits above Train, so the caller
/// that has it (the CLI) implements this; a session without one runs as a single process.
public protocol TrainingJob: AnyObject {
    /// Several processes train together (asked after `split`, which may start them).
    var isDistributed: Bool { get }
    /// This process writes the run folder and reports (rank 0).
    var isPrimary: Bool { get }
    /// This process's share of the batches. `batch`: the batch size of `train`; `resuming`: the
    /// checkpoint a resumed run continues (its epoch may be part done, under another split).
    func split(train: BatchProvider, validation: BatchProvider?, batch: Int, resuming: CheckpointInfo?) throws -> TrainingSplit
    /// Joins `trainer` to the other processes (its `coordinator`) and checks that they agree;
    /// nothing to do for a single process.
    func join(_ trainer: Trainer, split: TrainingSplit, info: CheckpointInfo) throws
}

/// The batches a process trains and validates on, and what its checkpoints record about them.
public struct TrainingSplit {
    public var train: BatchProvider
    public var validation: BatchProvider?
    /// The split as checkpoints record it, given the batches done of an interrupted epoch (nil
    /// at an epoch's end).
    public var record: (_ batchesDone: Int?) -> CheckpointInfo.DataParallelRecord?

    public init(train: BatchProvider, validation: BatchProvider?, record: @escaping (Int?) -> CheckpointInfo.DataParallelRecord?) {
        self.train = train; self.validation = validation; self.record = record
    }

    /// One process that trains on every batch of size `batch`.
    public static func single(train: BatchProvider, validation: BatchProvider?, batch: Int) -> TrainingSplit {
        TrainingSplit(train: train, validation: validation) { done in
            CheckpointInfo.DataParallelRecord(ranks: 1, batchPerRank: batch, samplesDone: done.map { $0 * batch })
        }
    }
}
