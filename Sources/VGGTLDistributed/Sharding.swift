import Foundation
import VGGTLData
import VGGTLTrain

/// A dataset that data-parallel training can split: its epoch order (one seeded shuffle, the
/// same on every rank) and batches over any list of its samples in a given order.
public protocol ShardableBatches: BatchProvider {
    var sampleCount: Int { get }
    var batchSize: Int { get }
    /// The samples of an epoch in visiting order (identifiers `batches(epoch:visiting:)` takes).
    func order(epoch: Int) -> [Int]
    /// Batches of `batchSize` over `samples` in that order (no further shuffling); augmentation
    /// still depends only on (seed, epoch, sample).
    func batches(epoch: Int, visiting samples: [Int]) -> AnyIterator<Batch>
    /// A fingerprint of what the samples are (names, labels, sizes or values), compared between
    /// ranks before training.
    var dataFingerprint: UInt64 { get }
}

/// One step of a data-parallel epoch: the global batch is positions [start, start + count) of
/// the epoch order; this rank's share is [start + offset, start + offset + share).
public struct ShardStep: Equatable, Sendable {
    public var start: Int, count: Int, offset: Int, share: Int
    public var end: Int { start + count }
}

/// Splits epochs between ranks. Each step's global batch holds `ranks * batchPerRank` samples
/// of the epoch's one order, each rank taking a contiguous `batchPerRank` of it, so R ranks at
/// batch B visit exactly the batches one process at batch R*B visits. The last, shorter global
/// batch is split as evenly as possible (shares differ by at most one), so no sample is dropped
/// or doubled and every rank steps the same number of times; a rank whose share is empty (fewer
/// samples than ranks) still takes part in the step with an empty batch.
public enum ShardPlan {
    public static func steps(samples: Int, from first: Int = 0, ranks: Int, batchPerRank: Int, rank: Int) -> [ShardStep] {
        let global = ranks * batchPerRank
        var steps: [ShardStep] = []
        var start = first
        while start < samples {
            let count = min(global, samples - start)
            if count == global {
                steps.append(ShardStep(start: start, count: count, offset: rank * batchPerRank, share: batchPerRank))
            } else {
                let base = count / ranks, extra = count % ranks
                steps.append(ShardStep(start: start, count: count, offset: rank * base + min(rank, extra),
                                       share: base + (rank < extra ? 1 : 0)))
            }
            start += count
        }
        return steps
    }

    /// A contiguous, even share of `count` items for evaluation (no steps to keep in line).
    public static func evaluationRange(count: Int, ranks: Int, rank: Int) -> Range<Int> {
        let base = count / ranks, extra = count % ranks
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }
}

/// The training batches of one rank. Iterating an epoch also publishes the step each batch
/// belongs to (`current`), which the data-parallel trainer reads to set the loss scale and the
/// dropout offsets. A run resumed part-way through an epoch under another number of ranks
/// starts that epoch at the samples already done, after placeholder batches the trainer skips.
public final class ShardedBatches: BatchProvider {
    public let inner: ShardableBatches
    public let rank: Int, ranks: Int, batchPerRank: Int
    /// The step of the batch last handed out (nil before the first of an epoch).
    public private(set) var current: ShardStep?
    /// A resumed epoch: its number, the batches the trainer will skip, the samples already done.
    public var resume: (epoch: Int, skippedBatches: Int, samplesDone: Int)?

    public init(_ inner: ShardableBatches, rank: Int, ranks: Int) {
        self.inner = inner; self.rank = rank; self.ranks = ranks; batchPerRank = inner.batchSize
    }

    public var globalBatch: Int { ranks * batchPerRank }
    public var batchCount: Int { (inner.sampleCount + globalBatch - 1) / globalBatch }

    public func steps(epoch: Int) -> (placeholders: Int, steps: [ShardStep]) {
        let from = resume.map { $0.epoch == epoch ? $0.samplesDone : 0 } ?? 0
        let placeholders = resume.map { $0.epoch == epoch ? $0.skippedBatches : 0 } ?? 0
        return (placeholders, ShardPlan.steps(samples: inner.sampleCount, from: from, ranks: ranks, batchPerRank: batchPerRank, rank: rank))
    }

    public func batches(epoch: Int) -> AnyIterator<Batch> {
        let order = inner.order(epoch: epoch)
        let (placeholders, steps) = self.steps(epoch: epoch)
        let mine = steps.flatMap { order[($0.start + $0.offset)..<($0.start + $0.offset + $0.share)] }
        let batches = inner.batches(epoch: epoch, visiting: mine)
        var k = 0
        current = nil
        return AnyIterator { [self] in
            defer { k += 1 }
            if k < placeholders { return Batch(x: [], labels: [], indices: [], count: 0) }
            let i = k - placeholders
            guard i < steps.count else { current = nil; return nil }
            current = steps[i]
            // An empty share takes no batch from the loader (it made none for it).
            if steps[i].share == 0 { return Batch(x: [], labels: [], indices: [], count: 0) }
            return batches.next()
        }
    }

    /// What a checkpoint written now records: samples of the epoch done after the current step.
    public func record(midEpoch: Bool) -> CheckpointInfo.DataParallelRecord {
        CheckpointInfo.DataParallelRecord(ranks: ranks, batchPerRank: batchPerRank, samplesDone: midEpoch ? current?.end : nil)
    }
}

/// This rank's contiguous share of an evaluation set, in the set's order.
public final class EvaluationShard: BatchProvider {
    public let inner: ShardableBatches
    public let range: Range<Int>
    public init(_ inner: ShardableBatches, rank: Int, ranks: Int) {
        self.inner = inner
        range = ShardPlan.evaluationRange(count: inner.sampleCount, ranks: ranks, rank: rank)
    }
    public var batchCount: Int { (range.count + inner.batchSize - 1) / inner.batchSize }
    public func batches(epoch: Int) -> AnyIterator<Batch> {
        inner.batches(epoch: epoch, visiting: Array(inner.order(epoch: epoch)[range]))
    }
}

extension BatchLoader: ShardableBatches {
    public var sampleCount: Int { indices.count }

    public func batches(epoch: Int, visiting samples: [Int]) -> AnyIterator<Batch> {
        BatchLoader(source: source, indices: samples, batchSize: batchSize, input: input, augmentation: augmentation,
                    shuffle: false, seed: seed, workers: workers, prefetch: prefetch).batches(epoch: epoch)
    }

    /// Class names, then per sample its name, label and (for files) size in bytes; in-memory
    /// datasets hash their pixels.
    public var dataFingerprint: UInt64 {
        var h = Fingerprint()
        h.add(source.classNames.joined(separator: "\n"))
        if let a = source as? ArraySource {
            h.add(a.images)
            h.add(indices.map { UInt64(bitPattern: Int64($0)) })
            h.add(indices.map { UInt64(a.labels[$0]) })
            return h.value
        }
        for i in indices {
            let name = source.name(i)
            h.add(name)
            h.add(UInt64(source.label(i)))
            if source.isMultiLabel { h.add(source.targets(i).map { UInt64($0) }) }
            let attributes = try? FileManager.default.attributesOfItem(atPath: name)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            h.add(UInt64(bitPattern: size))
        }
        return h.value
    }
}

extension ArrayBatches: ShardableBatches {
    public var sampleCount: Int { count }

    public var dataFingerprint: UInt64 {
        var h = Fingerprint()
        h.add(values)
        h.add(labels.map { UInt64(bitPattern: Int64($0)) })
        h.add(sampleShape.map { UInt64($0) })
        if let targets { h.add(targets.map { UInt64($0) }) }
        return h.value
    }
}
