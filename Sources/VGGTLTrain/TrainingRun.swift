import Foundation
import VGGTLTensors
import VGGTLData

/// One training run in its folder: after every epoch the history CSV, the curves picture,
/// TensorBoard scalars and the checkpoints (last, and best by val_loss) are brought up to date.
public final class TrainingRun {
    public let dir: URL
    public var info: CheckpointInfo
    private let boards: (train: TensorBoardWriter, validation: TensorBoardWriter)?
    private var bestValLoss: Double
    /// False on the other ranks of a data-parallel job: rank 0 alone writes the folder.
    public let writes: Bool
    /// How the batches are split, recorded in every checkpoint (with the batches done of an
    /// interrupted epoch; nil at an epoch's end).
    public var splitRecord: ((_ batchesDone: Int?) -> CheckpointInfo.DataParallelRecord?)?

    public init(dir: URL, info: CheckpointInfo, tensorboard: URL?, writes: Bool = true) throws {
        self.dir = dir
        self.info = info
        self.writes = writes
        if writes { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        boards = try tensorboard.flatMap { writes ? $0 : nil }.map {
            (try TensorBoardWriter(directory: $0.appendingPathComponent("train")),
             try TensorBoardWriter(directory: $0.appendingPathComponent("validation")))
        }
        bestValLoss = info.history.records.compactMap(\.valLoss).min() ?? .infinity
    }

    /// Trains `trainer` from the checkpoint's epoch (and batch, for a run interrupted mid-epoch)
    /// up to `epochs`. Ctrl-C/SIGTERM writes `last` at the last finished batch and throws
    /// `VGGTLError.interrupted`; any other error leaves the last checkpoint as it was and says so.
    @discardableResult
    public func fit(_ trainer: Trainer, train: BatchProvider, validation: BatchProvider?, epochs: Int, title: String) throws -> History {
        trainer.history = info.history
        do {
            return try trainer.fit(train: train, validation: validation, epochs: epochs, startEpoch: info.epoch,
                                   skipBatches: info.batchesDone ?? 0, partial: info.partialMetrics,
                                   partialLearningRate: info.partialLearningRate) { record in
                try self.epochEnded(record, trainer: trainer, title: title)
            }
        } catch let stop as TrainingInterruption {
            let last = dir.appendingPathComponent("last.json")
            if !stop.atEpochEnd {
                info.epoch = stop.epoch
                info.batchesDone = stop.batches
                info.partialMetrics = stop.metrics
                info.partialLearningRate = trainer.optimizer.learningRate
                info.history = trainer.history
                info.optimizerIterations = trainer.optimizer.iterations
                info.dropoutSteps = trainer.model.dropoutSteps
                info.dataParallel = splitRecord?(stop.batches)
                if writes { try save(trainer, name: "last") }
            }
            // No process of a data-parallel job exits before the checkpoint is on disk.
            try trainer.coordinator?.checkpointWritten()
            throw VGGTLError.interrupted(signal: stop.signal, epoch: stop.atEpochEnd ? stop.epoch : stop.epoch + 1,
                                         batch: stop.atEpochEnd ? 0 : stop.batches, batches: stop.batchCount, checkpoint: last.path)
        } catch let error as VGGTLError {
            throw keptCheckpoint(after: error)
        }
    }

    /// The error, with what survives of the run: the last checkpoint, untouched by the failure.
    func keptCheckpoint(after error: VGGTLError) -> VGGTLError {
        let last = dir.appendingPathComponent("last.json")
        guard let saved = try? Checkpoint.load(last) else {
            switch error {
            case .nonFiniteLoss, .nonFiniteWeights, .deviceFailed: return .runStopped(cause: error, kept: nil)
            default: return error
            }
        }
        let at = saved.batchesDone.map { "epoch \(saved.epoch + 1), batch \($0)" } ?? "end of epoch \(saved.epoch)"
        return .runStopped(cause: error, kept: "the last good checkpoint (\(at)) is kept in \(last.path)")
    }

    /// Saves `info` as checkpoint `name`, telling the trainer's callbacks how far the save got.
    func save(_ trainer: Trainer, name: String, withOptimizer: Bool = true) throws {
        try Checkpoint.save(info, model: trainer.model, optimizer: withOptimizer ? trainer.optimizer : nil, in: dir, name: name) { stage in
            for c in trainer.callbacks { c.checkpointProgress(trainer, name: name, stage: stage) }
        }
    }

    func epochEnded(_ record: EpochRecord, trainer: Trainer, title: String) throws {
        info.epoch = record.epoch
        info.batchesDone = nil
        info.partialMetrics = nil
        info.partialLearningRate = nil
        info.history = trainer.history
        info.optimizerIterations = trainer.optimizer.iterations
        info.dropoutSteps = trainer.model.dropoutSteps
        info.dataParallel = splitRecord?(nil)
        let improved = record.valLoss.map { $0 < bestValLoss } ?? false
        if let vl = record.valLoss, vl < bestValLoss { bestValLoss = vl }
        guard writes else { return }
        try save(trainer, name: "last")
        if improved { try save(trainer, name: "best", withOptimizer: false) }
        try writeAtomically(Data(trainer.history.csv.utf8), to: dir.appendingPathComponent("history.csv"))
        try writeAtomically(Data(historySVG(trainer.history, title: title).utf8), to: dir.appendingPathComponent("curves.svg"))
        if let boards {
            try boards.train.scalar("epoch_loss", Float(record.loss), step: record.epoch - 1)
            try boards.train.scalar("epoch_accuracy", Float(record.accuracy), step: record.epoch - 1)
            try boards.train.scalar("epoch_learning_rate", Float(record.learningRate), step: record.epoch - 1)
            if let vl = record.valLoss, let va = record.valAccuracy {
                try boards.validation.scalar("epoch_loss", Float(vl), step: record.epoch - 1)
                try boards.validation.scalar("epoch_accuracy", Float(va), step: record.epoch - 1)
            }
        }
    }
}

/// Samples held in memory as floats (bottleneck features): batches in order or shuffled per
/// epoch with a seeded permutation; the last partial batch is kept.
public final class ArrayBatches: BatchProvider {
    public let values: [Float]
    public let sampleShape: [Int]
    public let labels: [Int]
    public let batchSize: Int
    public let shuffle: Bool
    public let seed: UInt64
    /// `--sampler balanced`: each epoch draws the classes equally often (`balancedOrder`).
    public var balanced = false
    private let sampleSize: Int

    /// Multi-label samples: one multi-hot row of `targetWidth` floats per sample (`labels` then
    /// all 0); nil for single-label samples.
    public let targets: [Float]?
    public let targetWidth: Int

    public init(values: [Float], sampleShape: [Int], labels: [Int], targets: [Float]? = nil, batchSize: Int, shuffle: Bool, seed: UInt64) throws {
        sampleSize = sampleShape.reduce(1, *)
        guard sampleSize > 0, values.count == sampleSize * labels.count else {
            throw VGGTLError.shapeMismatch(what: "features for \(labels.count) labels", expected: [labels.count] + sampleShape, got: [values.count])
        }
        guard batchSize > 0 else { throw VGGTLError.invalidSetting(.batch, value: "\(batchSize)", expected: "at least 1") }
        if let targets {
            guard !labels.isEmpty, targets.count % labels.count == 0, targets.count > 0 else {
                throw VGGTLError.shapeMismatch(what: "multi-hot targets for \(labels.count) samples", expected: [labels.count, -1], got: [targets.count])
            }
            targetWidth = targets.count / labels.count
        } else {
            targetWidth = 1
        }
        self.values = values; self.sampleShape = sampleShape; self.labels = labels; self.targets = targets
        self.batchSize = batchSize; self.shuffle = shuffle; self.seed = seed
    }

    /// What a batch carries for sample i: its class index, or its multi-hot row.
    func sampleTargets(_ i: Int) -> ArraySlice<Float> {
        guard let targets else { return [Float(labels[i])] }
        return targets[(i * targetWidth)..<((i + 1) * targetWidth)]
    }

    public var count: Int { labels.count }
    public var batchCount: Int { (labels.count + batchSize - 1) / batchSize }

    public func subset(_ indices: [Int]) throws -> ArrayBatches {
        var v = [Float](); v.reserveCapacity(indices.count * sampleSize)
        for i in indices { v += values[(i * sampleSize)..<((i + 1) * sampleSize)] }
        let t = targets.map { _ in indices.flatMap { sampleTargets($0) } }
        let b = try ArrayBatches(values: v, sampleShape: sampleShape, labels: indices.map { labels[$0] }, targets: t, batchSize: batchSize, shuffle: shuffle, seed: seed)
        b.balanced = balanced
        return b
    }

    public func batches(epoch: Int) -> AnyIterator<Batch> {
        batches(epoch: epoch, visiting: order(epoch: epoch))
    }

    /// The samples of an epoch in visiting order.
    public func order(epoch: Int) -> [Int] {
        if balanced { return balancedOrder(labels: labels, seed: seed, epoch: epoch) }
        var order = Array(0..<labels.count)
        if shuffle {
            var g = SeededGenerator(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
            order.shuffle(using: &g)
        }
        return order
    }

    /// Batches over `order` (sample indices), the last one partial.
    public func batches(epoch: Int, visiting order: [Int]) -> AnyIterator<Batch> {
        var start = 0
        return AnyIterator {
            guard start < order.count else { return nil }
            let idx = Array(order[start..<min(start + self.batchSize, order.count)])
            start += self.batchSize
            var x = [Float](); x.reserveCapacity(idx.count * self.sampleSize)
            for i in idx { x += self.values[(i * self.sampleSize)..<((i + 1) * self.sampleSize)] }
            return Batch(x: x, labels: idx.flatMap { self.sampleTargets($0) }, indices: idx, count: idx.count, failures: [])
        }
    }
}
