import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLData
import VGGTLModels

/// Precise BatchNorm (Wu & Johnson 2021, fvcore's `update_bn_stats`, PyTorch's
/// `torch.optim.swa_utils.update_bn`): at the end of each epoch, before validation and the
/// checkpoint, the moving mean and variance of every BatchNorm layer that trains its
/// statistics are recomputed from the epoch's final weights, instead of being the exponential
/// average of statistics of weights that have since moved on (with few steps per epoch and
/// momentum 0.99 they trail far behind).
///
/// The pass runs forward only (no gradients, no update) over the first `maxBatches` training
/// batches of the epoch's order, as the trainer draws them (augmented when training is), each
/// BatchNorm layer normalising with its batch's statistics as in training; dropout is off, as
/// at inference, where the statistics are used. Each layer's moving mean becomes the
/// equal-weighted mean over those batches of the batch means, its moving variance that of the
/// batch variances, each made unbiased (n / (n - 1)) as training's moving variance is.
/// Frozen layers, and layers that keep their moving statistics (`frozenStatistics`), stay as
/// they are. In data-parallel training each process runs its share of the batches and the
/// statistics are then averaged over the processes, weighted by their batches, so every
/// process ends with the same.
public struct BatchNormRecalibration: Sendable, Equatable, Codable {
    /// fvcore's default: about 200 batches give statistics as good as all of a large set.
    public static let defaultBatches = 200
    /// At most this many batches of the training set (fewer when it has fewer).
    public var maxBatches: Int

    public init(maxBatches: Int = BatchNormRecalibration.defaultBatches) { self.maxBatches = maxBatches }
}

extension Model {
    /// The BatchNorm layers a recalibration pass recomputes (see `BatchNormalization.recalibrates`).
    public var recalibratedBatchNorms: [BatchNormalization] {
        layers.compactMap { $0 as? BatchNormalization }.filter(\.recalibrates)
    }
}

extension Trainer {
    /// One recalibration pass over `provider`'s batches of `epoch` (see `BatchNormRecalibration`).
    /// Returns the batches it used (all processes'); 0 when the model has nothing to recalibrate.
    @discardableResult
    public func recalibrateBatchNorm(_ provider: BatchProvider, epoch: Int, maxBatches: Int) throws -> Int {
        let layers = model.recalibratedBatchNorms
        guard !layers.isEmpty else { return 0 }
        var k = 0, seen = 0
        let limit = min(maxBatches, provider.batchCount)
        for batch in provider.batches(epoch: epoch) {
            // A data-parallel share counts as a batch of the global step, even when empty here.
            seen += 1
            if seen > limit { break }
            guard batch.count > 0 else { continue }
            k += 1
            let (xt, _) = try fittingBatch(batch.count) { try upload(batch) }
            _ = try fittingBatch(batch.count) { try model.network.forward(xt, .recalibration(batch: k)) }
            try checkDevice()
        }
        if let coordinator {
            return try coordinator.averageRecalibratedStatistics(layers.flatMap { [$0.movingMean, $0.movingVariance] }, batches: k)
        }
        return k
    }
}
