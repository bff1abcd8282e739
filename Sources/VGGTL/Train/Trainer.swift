import Foundation

/// Where a trainer gets its batches: an image loader, or features held in memory.
public protocol BatchProvider: AnyObject {
    var batchCount: Int { get }
    func batches(epoch: Int) -> AnyIterator<Batch>
}

/// Loss and accuracy over an epoch, accumulated per sample.
public struct EpochMetrics: Sendable {
    public var loss = 0.0, correct = 0, samples = 0
    public var meanLoss: Double { samples == 0 ? .nan : loss / Double(samples) }
    public var accuracy: Double { samples == 0 ? .nan : Double(correct) / Double(samples) }
}

/// Runs epochs: upload a batch, forward, loss, backward, optimizer update, all on the model's
/// device; only the batch goes up and the per-sample losses and logits come back.
public final class Trainer {
    public let model: Model
    public let optimizer: Optimizer
    public let baseLearningRate: Float
    public var schedule: LearningRateSchedule
    public var history = History()
    /// Stop when val_loss has not improved for this many epochs.
    public var earlyStoppingPatience: Int?
    public var verbose = true
    private let loss: Loss
    private var x: Tensor?, y: Tensor?

    public init(model: Model, optimizer: Optimizer, schedule: LearningRateSchedule = .constant) {
        self.model = model; self.optimizer = optimizer; self.schedule = schedule
        baseLearningRate = optimizer.learningRate
        loss = Loss(model.config.loss)
    }

    /// Uploads a batch into reused input and label tensors.
    func upload(_ batch: Batch) throws -> (Tensor, Tensor) {
        let d = model.device, n = batch.count
        let inputShape = [n] + model.config.inputShape
        guard batch.x.count == inputShape.reduce(1, *) else {
            throw VGGTLError.shapeMismatch(what: "batch for model input", expected: inputShape, got: [batch.x.count])
        }
        for l in batch.labels where l < 0 || Int(l) >= model.config.classes {
            throw VGGTLError.invalidArgument("label \(Int(l)) is outside the model's \(model.config.classes) classes")
        }
        let xt = try reuse(&x, inputShape, on: d, what: "input batch")
        batch.x.withUnsafeBufferPointer { d.write($0, to: xt.buffer, offset: 0) }
        let yt = try reuse(&y, model.config.loss == .softmaxCrossEntropy ? [n] : [n, 1], on: d, what: "labels")
        batch.labels.withUnsafeBufferPointer { d.write($0, to: yt.buffer, offset: 0) }
        return (xt, yt)
    }

    /// One optimisation step; returns the batch's mean loss and correct count.
    public func step(_ batch: Batch) throws -> (loss: Float, correct: Int) {
        let (xt, yt) = try upload(batch)
        let logits = try model.network.forward(xt, training: true)
        let (l, grad) = try loss.compute(logits: logits, labels: yt)
        guard l.isFinite else {
            throw VGGTLError.invalidArgument("the loss became \(l) (not finite); the learning rate \(optimizer.learningRate) is probably too high: lower --lr")
        }
        try model.network.backward(grad)
        try optimizer.update(model.network.trainableParameters)
        let predicted = predictedClasses(logits: logits.toArray(), rows: batch.count)
        return (l, zip(predicted, batch.labels).filter { $0 == Int($1) }.count)
    }

    public func trainEpoch(_ provider: BatchProvider, epoch: Int, skipBatches: Int = 0,
                           afterBatch: ((Int) throws -> Void)? = nil) throws -> EpochMetrics {
        var m = EpochMetrics()
        let bar = verbose ? ProgressBar(total: provider.batchCount) : nil
        var k = 0
        for batch in provider.batches(epoch: epoch) {
            k += 1
            if k <= skipBatches { continue }
            for f in batch.failures { FileHandle.standardError.write(Data("warning: skipped \(f.name): \(f.reason)\n".utf8)) }
            guard batch.count > 0 else { continue }
            let (l, correct) = try step(batch)
            m.loss += Double(l) * Double(batch.count); m.correct += correct; m.samples += batch.count
            bar?.update(k, images: m.samples, metrics: [("loss", m.meanLoss), ("acc", m.accuracy)])
            try afterBatch?(k)
        }
        bar?.update(k, images: m.samples, metrics: [("loss", m.meanLoss), ("acc", m.accuracy)], final: true)
        return m
    }

    /// Inference over a provider: metrics plus true and predicted classes (and logits rows), in order.
    public func evaluate(_ provider: BatchProvider) throws -> (metrics: EpochMetrics, truth: [Int], predicted: [Int], logits: [Float]) {
        var m = EpochMetrics(), truth: [Int] = [], predicted: [Int] = [], all: [Float] = []
        for batch in provider.batches(epoch: 0) where batch.count > 0 {
            let (xt, yt) = try upload(batch)
            let logits = try model.network.forward(xt, training: false)
            let (l, _) = try loss.compute(logits: logits, labels: yt)
            let z = logits.toArray()
            let p = predictedClasses(logits: z, rows: batch.count)
            let t = batch.labels.map { Int($0) }
            m.loss += Double(l) * Double(batch.count); m.samples += batch.count
            m.correct += zip(p, t).filter { $0 == $1 }.count
            truth += t; predicted += p; all += z
        }
        return (m, truth, predicted, all)
    }

    /// Trains epochs [startEpoch, epochs). `onEpochEnd` sees every record (checkpoints, plots).
    @discardableResult
    public func fit(train: BatchProvider, validation: BatchProvider?, epochs: Int, startEpoch: Int = 0,
                    onEpochEnd: ((EpochRecord) throws -> Void)? = nil) throws -> History {
        var best = history.records.compactMap(\.valLoss).min() ?? .infinity
        var sinceBest = 0
        for epoch in startEpoch..<epochs {
            optimizer.learningRate = schedule.rate(base: baseLearningRate, epoch: epoch)
            if verbose { print("Epoch \(epoch + 1)/\(epochs)") }
            let t0 = Date()
            let m = try trainEpoch(train, epoch: epoch)
            var record = EpochRecord(epoch: epoch + 1, loss: m.meanLoss, accuracy: m.accuracy, valLoss: nil, valAccuracy: nil,
                                     learningRate: Double(optimizer.learningRate), seconds: 0)
            if let validation {
                let v = try evaluate(validation).metrics
                record.valLoss = v.meanLoss; record.valAccuracy = v.accuracy
                if verbose { print(String(format: "val_loss: %.4f - val_acc: %.4f", v.meanLoss, v.accuracy)) }
            }
            record.seconds = Date().timeIntervalSince(t0)
            history.records.append(record)
            try onEpochEnd?(record)
            if let patience = earlyStoppingPatience, let vl = record.valLoss {
                if vl < best { best = vl; sinceBest = 0 } else {
                    sinceBest += 1
                    if sinceBest >= patience {
                        if verbose { print("early stopping: val_loss has not improved for \(patience) epochs (best \(String(format: "%.4f", best)))") }
                        break
                    }
                }
            }
        }
        return history
    }
}
extension BatchLoader: BatchProvider {}
