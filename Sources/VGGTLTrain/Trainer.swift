import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLModels

/// Where a trainer gets its batches: an image loader, or features held in memory.
public protocol BatchProvider: AnyObject {
    var batchCount: Int { get }
    func batches(epoch: Int) -> AnyIterator<Batch>
}

/// Loss and accuracy over an epoch, accumulated per sample.
public struct EpochMetrics: Sendable, Codable, Equatable {
    public var loss = 0.0, correct = 0, samples = 0
    public init() {}
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
    /// The epoch (0-based) at which `schedule` starts: a second training stage has its own schedule.
    public var scheduleStartEpoch = 0
    public var history = History()
    /// Stop when val_loss has not improved for this many epochs.
    public var earlyStoppingPatience: Int?
    public var verbose = true
    /// Data-parallel training (Distributed/): steps, metrics and stops agreed with the other
    /// processes. nil: a single process.
    public var coordinator: TrainingCoordinator?
    /// `--strict`: an unreadable image stops the run instead of being skipped with a warning.
    public var strictImages = false
    /// Unreadable images seen so far (each warned about once, whatever the epoch).
    public private(set) var unreadableImages: [String] = []
    private var warned = Set<String>()
    /// Where `step` is, for messages (epoch 0-based, batch 1-based).
    private var position = (epoch: 0, batch: 0)
    /// Called at the points of each batch and checkpoint (see `TrainingCallback`).
    public var callbacks: [TrainingCallback] = []
    /// Hears, at an epoch's end, how many images were newly skipped as unreadable and how many
    /// so far; nil: a warning on stderr.
    public var onSkippedImages: ((_ newly: Int, _ total: Int) -> Void)?
    /// `--accumulate`: batches whose gradients are summed before one optimiser step (1: a step
    /// per batch). Interruptions stop only after a step's last batch, so a checkpoint never
    /// holds half a step.
    public var accumulate = 1
    private let accumulator = GradientAccumulator()
    /// Precise BatchNorm after every epoch (see `BatchNormRecalibration`); nil: the moving
    /// statistics are training's exponential averages.
    public var batchNormRecalibration: BatchNormRecalibration?
    /// Keras' class_weight: one weight per class for the training loss (validation's stays
    /// unweighted, as in Keras). nil: every class weighs 1.
    public var classWeights: [Float]? {
        didSet { loss = Loss(model.config.loss, classWeights: classWeights) }
    }
    private var loss: Loss
    private let validationLoss: Loss
    private var x: Tensor?, y: Tensor?

    public init(model: Model, optimizer: Optimizer, schedule: LearningRateSchedule = .constant) {
        self.model = model; self.optimizer = optimizer; self.schedule = schedule
        baseLearningRate = optimizer.learningRate
        loss = Loss(model.config.loss)
        validationLoss = Loss(model.config.loss)
    }

    /// Uploads a batch into reused input and label tensors.
    func upload(_ batch: Batch) throws -> (Tensor, Tensor) {
        let d = model.device, n = batch.count
        let inputShape = [n] + model.config.inputShape
        guard batch.x.count == inputShape.reduce(1, *) else {
            throw VGGTLError.shapeMismatch(what: "batch for model input", expected: inputShape, got: [batch.x.count])
        }
        let c = model.config
        guard batch.labels.count == n * c.targetWidth else {
            throw VGGTLError.shapeMismatch(what: c.multiLabel ? "multi-hot targets for a multi-label model" : "labels for the batch",
                                           expected: [n, c.targetWidth], got: [batch.labels.count])
        }
        if c.multiLabel {
            for l in batch.labels where l != 0 && l != 1 {
                throw VGGTLError.invalidArgument("multi-hot target \(l) is not 0 or 1")
            }
        } else {
            for l in batch.labels where l < 0 || Int(l) >= c.classes {
                throw VGGTLError.invalidArgument("label \(Int(l)) is outside the model's \(c.classes) classes")
            }
        }
        let xt = try reuse(&x, inputShape, on: d, what: "input batch")
        batch.x.withUnsafeBufferPointer { d.write($0, to: xt.buffer, offset: 0) }
        let yt = try reuse(&y, c.targetShape(rows: n), on: d, what: "labels")
        batch.labels.withUnsafeBufferPointer { d.write($0, to: yt.buffer, offset: 0) }
        return (xt, yt)
    }

    /// One optimisation step; returns the batch's mean loss and correct count.
    public func step(_ batch: Batch) throws -> (loss: Float, correct: Int) {
        let (xt, yt) = try upload(batch)
        let logits = try model.network.forward(xt, .training)
        let (l, grad) = try loss.compute(logits: logits, labels: yt)
        try checkDevice()
        guard l.isFinite else {
            // Nothing was updated with this batch: the weights are those of the last good step.
            throw VGGTLError.nonFiniteLoss(value: l, epoch: position.epoch + 1, batch: position.batch,
                                           step: optimizer.iterations + 1, learningRate: optimizer.learningRate)
        }
        try model.network.backward(grad)
        try optimizer.update(model.network.trainableParameters)
        let correct = correctCount(logits: logits.toArray(), targets: batch.labels, rows: batch.count, multiLabel: model.config.multiLabel)
        try checkDevice()
        return (l, correct)
    }

    /// One batch of an accumulated step (`accumulate` > 1): forward, loss and backward, its
    /// gradients summed with the step's earlier batches'; after the step's `last` batch the
    /// optimiser updates with the mean over all of them.
    func accumulatingStep(_ batch: Batch, last: Bool) throws -> (loss: Float, correct: Int) {
        let (xt, yt) = try upload(batch)
        let logits = try model.network.forward(xt, .training)
        // Per-sample gradients summed (scale 1, not 1/n): the step divides by all its samples.
        let (l, grad) = try loss.compute(logits: logits, labels: yt, gradientScale: 1)
        try checkDevice()
        guard l.isFinite else {
            accumulator.reset()
            throw VGGTLError.nonFiniteLoss(value: l, epoch: position.epoch + 1, batch: position.batch,
                                           step: optimizer.iterations + 1, learningRate: optimizer.learningRate)
        }
        try model.network.backward(grad)
        let parameters = model.network.trainableParameters
        if last {
            accumulator.finish(parameters, count: batch.count)
            try optimizer.update(parameters)
        } else {
            try accumulator.add(parameters, count: batch.count)
        }
        let correct = correctCount(logits: logits.toArray(), targets: batch.labels, rows: batch.count, multiLabel: model.config.multiLabel)
        try checkDevice()
        return (l, correct)
    }

    /// The end of an accumulated step whose last batch had no readable image: the update uses
    /// the batches before it (none: no step).
    func finishAccumulatedStep() throws {
        guard accumulator.samples > 0 else { return }
        let parameters = model.network.trainableParameters
        accumulator.finish(parameters, count: 0)
        try optimizer.update(parameters)
    }

    /// One data-parallel step: every process runs it (a stand-in batch where its share is
    /// empty), agrees on the loss before backward, reduces gradients during backward, and
    /// updates identically. Returns the totals of all processes. `accumulating`: a batch of an
    /// accumulated step, and whether it is the step's last; the gradients stay on each process
    /// until then and are reduced once per step, their sum with the earlier batches'.
    func step(_ batch: Batch, coordinator c: TrainingCoordinator, accumulating last: Bool? = nil) throws -> StepTotals {
        let (run, scale, context) = try c.prepareStep(batch, model: model)
        let (xt, yt) = try upload(run)
        let logits = try model.network.forward(xt, context)
        // Accumulating: per-sample gradients summed (0 for a stand-in batch); the step divides.
        let (l, grad) = try loss.compute(logits: logits, labels: yt, gradientScale: last == nil ? scale : scale == 0 ? 0 : 1)
        try checkDevice()
        let real = batch.count > 0
        let correct = real ? correctCount(logits: logits.toArray(), targets: run.labels, rows: run.count, multiLabel: model.config.multiLabel) : 0
        let local = StepTotals(lossSum: real ? Double(l) * Double(batch.count) : 0,
                               correct: correct, samples: batch.count,
                               nonFinite: real && !l.isFinite, signal: TrainingInterrupt.pendingSignal)
        let total = try c.agree(local)
        guard !total.nonFinite else {
            accumulator.reset()
            throw VGGTLError.nonFiniteLoss(value: Float(total.lossSum / Double(max(total.samples, 1))), epoch: position.epoch + 1,
                                           batch: position.batch, step: optimizer.iterations + 1, learningRate: optimizer.learningRate)
        }
        let parameters = model.network.trainableParameters
        switch last {
        case nil:
            try model.network.backward(grad, gradientsReady: c.gradientsReady)
            try c.finishGradients(parameters)
        case false?:
            try model.network.backward(grad)
            try accumulator.add(parameters, count: total.samples)
            try checkDevice()
            return total
        case true?:
            let samples = accumulator.samples + total.samples
            let sums = accumulator
            // Each layer's gradients get the earlier batches' sums before they are reduced.
            try model.network.backward(grad, gradientsReady: { ready in
                sums.addSums(to: ready)
                c.gradientsReady(ready)
            })
            accumulator.reset()
            try c.finishAccumulatedGradients(parameters, samples: samples)
        }
        try optimizer.update(parameters)
        try checkDevice()
        return total
    }

    /// A device that failed since the last check (lost, reset, out of resources) stops the run
    /// here, before its results are used or saved.
    func checkDevice() throws {
        try model.device.checkHealthy()
    }

    /// Unreadable images of a batch: one warning line per file (once per run), or an error
    /// under `strictImages`.
    func report(_ failures: [(name: String, reason: String)]) throws {
        guard !failures.isEmpty else { return }
        if strictImages { throw VGGTLError.unreadableImages(files: failures.map(\.name), reasons: failures.map(\.reason)) }
        for f in failures where warned.insert(f.name).inserted {
            unreadableImages.append(f.name)
            writeStandardError("warning: skipped \(f.name): \(f.reason)\n")
        }
    }

    /// One epoch; `skipBatches` batches of it were done before (a resumed run), with metrics
    /// `initial`. After every batch a pending Ctrl-C/SIGTERM stops the epoch with a
    /// `TrainingInterruption` that says how far it got.
    public func trainEpoch(_ provider: BatchProvider, epoch: Int, skipBatches: Int = 0, initial: EpochMetrics = EpochMetrics(),
                           afterBatch: ((Int) throws -> Void)? = nil) throws -> EpochMetrics {
        var m = initial
        let bar = verbose ? ProgressBar(total: provider.batchCount) : nil
        // The speed counts the images of this process's batches, not those done before a resume.
        var images: Int { m.samples - initial.samples }
        let warnedBefore = unreadableImages.count
        var k = 0
        // An accumulated step ends after `accumulate` batches counted from where this epoch
        // (or its resume) starts, or at the epoch's last batch.
        let n = accumulate, total = provider.batchCount
        func endsStep(_ k: Int) -> Bool { (k - skipBatches) % n == 0 || k == total }
        accumulator.reset()
        // The stop signal any process saw in this step (a step of several batches included).
        var agreedStop: Int32 = 0
        for batch in provider.batches(epoch: epoch) {
            k += 1
            if k <= skipBatches { continue }
            for c in callbacks { c.trainBatchBegin(self, epoch: epoch, index: k, batch: batch) }
            try report(batch.failures)
            if let coordinator {
                position = (epoch, k)
                let t = try fittingBatch(max(batch.count, 1)) {
                    try step(batch, coordinator: coordinator, accumulating: n > 1 ? endsStep(k) : nil)
                }
                m.loss += t.lossSum; m.correct += t.correct; m.samples += t.samples
                if t.signal != 0 { agreedStop = t.signal }
            } else if n > 1 {
                position = (epoch, k)
                if batch.count > 0 {
                    let (l, correct) = try fittingBatch(batch.count) { try accumulatingStep(batch, last: endsStep(k)) }
                    m.loss += Double(l) * Double(batch.count); m.correct += correct; m.samples += batch.count
                } else if endsStep(k) {
                    try finishAccumulatedStep()
                }
            } else if batch.count > 0 {
                position = (epoch, k)
                let (l, correct) = try fittingBatch(batch.count) { try step(batch) }
                m.loss += Double(l) * Double(batch.count); m.correct += correct; m.samples += batch.count
            }
            bar?.update(k, images: images, metrics: [("loss", m.meanLoss), ("acc", m.accuracy)])
            try afterBatch?(k)
            for c in callbacks { c.trainBatchEnd(self, epoch: epoch, index: k) }
            // A stop waits for the step's last batch: no checkpoint holds half a step.
            guard endsStep(k) else { continue }
            // Under data parallelism every process stops after the same step: the one whose
            // agreement first saw a signal on any of them.
            if let signal = coordinator == nil ? TrainingInterrupt.pending : agreedStop == 0 ? nil : TrainingInterrupt.name(of: agreedStop) {
                if verbose, isatty(STDOUT_FILENO) != 0 { print("") }  // end the progress line
                throw TrainingInterruption(signal: signal, epoch: epoch, batches: k, batchCount: provider.batchCount, metrics: m)
            }
        }
        // A provider that gave fewer batches than it announced still ends its last step.
        if coordinator == nil, n > 1 { try finishAccumulatedStep() }
        bar?.update(k, images: images, metrics: [("loss", m.meanLoss), ("acc", m.accuracy)], final: true)
        let newlySkipped = unreadableImages.count - warnedBefore
        if newlySkipped > 0 {
            if let onSkippedImages {
                onSkippedImages(newlySkipped, unreadableImages.count)
            } else {
                writeStandardError("warning: \(Trainer.skippedImages(newly: newlySkipped, total: unreadableImages.count))\n")
            }
        }
        return m
    }

    /// The warning about images skipped in an epoch.
    public static func skippedImages(newly: Int, total: Int) -> String {
        "\(newly) unreadable image\(newly == 1 ? "" : "s") skipped (\(total) so far); set strictImages to stop at the first instead"
    }

    /// Inference over a provider: metrics plus true and predicted classes (and logits rows), in order;
    /// for a multi-label model the multi-hot target rows instead of classes (`truth` and `predicted` empty).
    /// `progress`: a progress bar on a terminal (erased when done; nothing on a pipe).
    public func evaluate(_ provider: BatchProvider, progress: Bool = false)
        throws -> (metrics: EpochMetrics, truth: [Int], predicted: [Int], logits: [Float], targets: [Float]) {
        var m = EpochMetrics(), truth: [Int] = [], predicted: [Int] = [], all: [Float] = [], targets: [Float] = []
        // Each process of a data-parallel job sees only its share: no bar with one rank's
        // figures; those of all ranks follow, reduced.
        let bar = progress && coordinator == nil ? ProgressBar(total: provider.batchCount, label: "validation", transient: true) : nil
        var k = 0
        defer { bar?.update(k, images: m.samples, metrics: [], final: true) }
        for batch in provider.batches(epoch: 0) {
            k += 1
            defer { bar?.update(k, images: m.samples, metrics: [("loss", m.meanLoss), ("acc", m.accuracy)]) }
            try report(batch.failures)
            guard batch.count > 0 else { continue }
            let (logits, l): (Tensor, Float) = try fittingBatch(batch.count) {
                let (xt, yt) = try upload(batch)
                let logits = try model.network.forward(xt, .inference)
                let l = try validationLoss.compute(logits: logits, labels: yt).loss
                try checkDevice()
                return (logits, l)
            }
            let z = logits.toArray()
            m.loss += Double(l) * Double(batch.count); m.samples += batch.count
            m.correct += correctCount(logits: z, targets: batch.labels, rows: batch.count, multiLabel: model.config.multiLabel)
            if model.config.multiLabel {
                // Multi-hot rows: `targets`; truth and predicted stay single-label's.
                targets += batch.labels
            } else {
                truth += batch.labels.map { Int($0) }; predicted += predictedClasses(logits: z, rows: batch.count)
            }
            all += z
        }
        // Each process evaluated its share: the metrics are those of all (truth and predictions
        // stay this process's; `vggtl evaluate` gathers them).
        if let coordinator { m = try coordinator.reduce(m) }
        return (m, truth, predicted, all, targets)
    }

    /// Trains epochs [startEpoch, epochs). `onEpochEnd` sees every record (checkpoints, plots).
    /// A resumed run passes the batches of `startEpoch` already done, their metrics and the
    /// rate they ran at: the epoch finishes at that rate, so each record has the one it used.
    @discardableResult
    public func fit(train: BatchProvider, validation: BatchProvider?, epochs: Int, startEpoch: Int = 0,
                    skipBatches: Int = 0, partial: EpochMetrics? = nil, partialLearningRate: Float? = nil,
                    onEpochEnd: ((EpochRecord) throws -> Void)? = nil) throws -> History {
        // Early stopping's state, rebuilt from the history so a resumed run stops where an
        // uninterrupted one would.
        var best = Double.infinity, sinceBest = 0
        for r in history.records {
            guard let vl = r.valLoss else { continue }
            if vl < best { best = vl; sinceBest = 0 } else { sinceBest += 1 }
        }
        // A run already past `epochs` has nothing to train.
        for epoch in startEpoch..<max(startEpoch, epochs) {
            let resumed = epoch == startEpoch ? skipBatches : 0
            optimizer.learningRate = (resumed > 0 ? partialLearningRate : nil)
                ?? schedule.rate(base: baseLearningRate, epoch: epoch - scheduleStartEpoch)
            if verbose { print("Epoch \(epoch + 1)/\(epochs)") }
            let t0 = Date()
            if resumed > 0, verbose { print("(resuming after batch \(resumed) of \(train.batchCount))") }
            let m = try trainEpoch(train, epoch: epoch, skipBatches: resumed,
                                   initial: epoch == startEpoch ? partial ?? EpochMetrics() : EpochMetrics())
            if let r = batchNormRecalibration {
                // Before the weights check of the epoch's end, validation and the checkpoint.
                let used = try recalibrateBatchNorm(train, epoch: epoch, maxBatches: r.maxBatches)
                if verbose, used > 0 { print("BatchNorm statistics recalibrated over \(used) training batch\(used == 1 ? "" : "es")") }
            }
            try coordinator?.epochEnded(model: model, optimizer: optimizer)
            var record = EpochRecord(epoch: epoch + 1, loss: m.meanLoss, accuracy: m.accuracy, valLoss: nil, valAccuracy: nil,
                                     learningRate: Double(optimizer.learningRate), seconds: 0)
            if let validation {
                let v = try evaluate(validation, progress: verbose).metrics
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
            // A signal during validation or the checkpoint: the epoch is saved, stop here.
            var pending = TrainingInterrupt.pending
            if let coordinator {
                let s = try coordinator.agreeOnStop(TrainingInterrupt.pendingSignal)
                pending = s == 0 ? nil : TrainingInterrupt.name(of: s)
            }
            if let signal = pending, epoch + 1 < epochs {
                throw TrainingInterruption(signal: signal, epoch: epoch + 1, batches: 0, batchCount: train.batchCount,
                                           metrics: EpochMetrics(), atEpochEnd: true)
            }
        }
        return history
    }
}

/// Thrown by `Trainer` when Ctrl-C or SIGTERM arrived: the epoch (0-based) in progress, how many
/// of its batches are done, and their metrics. `atEpochEnd`: it came after a finished epoch
/// whose checkpoint was already written.
public struct TrainingInterruption: Error {
    public var signal: String
    public var epoch: Int
    public var batches: Int
    public var batchCount: Int
    public var metrics: EpochMetrics
    public var atEpochEnd = false
}

/// Runs `body` for a batch of `batch` images; a device allocation that fails becomes an error
/// that suggests a batch size that fits (the failing buffer scales with the batch).
public func fittingBatch<T>(_ batch: Int, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as VGGTLError {
        switch e {
        case let .allocationTooLarge(bytes, limit, device, what):
            let fits = max(1, Int(Double(batch) * Double(limit) / Double(bytes)))
            throw VGGTLError.batchDoesNotFit(
                reason: "\(what) needs one buffer of \(mib(bytes)) but \(device) allows at most \(mib(limit)) per allocation (CL_DEVICE_MAX_MEM_ALLOC_SIZE)",
                batch: batch, suggestedBatch: min(fits, max(1, batch - 1)))
        case let .outOfDeviceMemory(bytes, device):
            throw VGGTLError.batchDoesNotFit(reason: "\(device) is out of memory allocating \(mib(bytes))",
                                             batch: batch, suggestedBatch: max(1, batch / 2))
        default: throw e
        }
    }
}

extension BatchLoader: BatchProvider {}
