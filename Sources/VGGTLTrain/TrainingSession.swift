import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels

/// A training job in its run folder, as `vggtl train`, `finetune` and `train-top` run it. It
/// checks a resume against the folder (or that a fresh run does not overwrite one), builds the
/// model (or restores it with its optimizer state), loads its starting weights, freezes it,
/// optionally checks the first batch against a reference device, joins the other processes of
/// a data-parallel job (`job`), and trains epoch by epoch while `TrainingRun` keeps the
/// checkpoints, history, curves and TensorBoard scalars up to date. With `headEpochs` it trains
/// in two stages: the head alone on the frozen trunk, then the `unfreeze` stages at a tenth of
/// the learning rate, each stage with its own schedule. The folder is the session's while it
/// runs (`FolderLock`): another session into it stops, naming this process. A resume refuses
/// or takes changed settings as `ResumeCheck` says. Errors are `VGGTLError`s that say what is
/// wrong; what it has to say along the way goes to `report`.
public final class TrainingSession {
    public struct Configuration {
        public var model: ModelConfig
        /// The classes of the data, in label order (recorded in checkpoints, checked on resume).
        public var classNames: [String]
        /// How the images became inputs (recorded for evaluate and predict; for a head on
        /// features, the trunk's input).
        public var input: InputSpec
        /// For a head on features: the trunk and weights the features came from.
        public var featureTrunk: CheckpointInfo.FeatureTrunk?
        /// Checkpoints (last.json, best.json), history.csv and curves.svg go here.
        public var runFolder: URL
        public var epochs = 10
        /// The batch size of the training batches (checkpoints record it).
        public var batch = 16
        /// Batches whose gradients each optimiser step sums (gradient accumulation): a step of
        /// batch x accumulate samples in the memory of one batch. BatchNorm still normalises
        /// each batch with its own statistics.
        public var accumulate = 1
        public var optimizer: OptimizerSpec
        /// A cosine schedule decays over the epochs of the stage it runs in.
        public var schedule = LearningRateSchedule.constant
        /// What trains; the rest of the trunk stays frozen.
        public var unfreeze = UnfreezeSpec.all
        /// Two stages: the head alone for this many epochs, then `unfreeze` for `epochs` more
        /// at a tenth of the learning rate with fresh optimizer state. 0: one stage.
        public var headEpochs = 0
        public var seed: UInt64 = 1
        /// Stop when val_loss has not improved for this many epochs (needs validation data).
        public var earlyStopping: Int?
        /// The run ends with the weights of its best epoch by val_loss (best.json), as Keras'
        /// `restore_best_weights`: the session's model holds them, and evaluate, predict and
        /// export use best.json anyway; last.json keeps the last epoch's, for a resume.
        public var restoreBest = false
        /// An unreadable image stops the run instead of being skipped with a warning.
        public var strictImages = false
        /// TensorBoard scalar event files go here.
        public var tensorboard: URL?
        /// Continue the run in `runFolder` where it stopped.
        public var resume = false
        /// Check the first batch against the reference device before training.
        public var verify = Verify.off
        /// What a fresh model starts from (not read when resuming).
        public var weights: StartingWeights?
        /// A run folder whose model (a head trained on features) starts the head.
        public var topModel: String?
        /// Ctrl-C and SIGTERM (and SIGUSR1 in a data-parallel job) write a checkpoint at the
        /// last finished batch and stop the run with `VGGTLError.interrupted`.
        public var handlesSignals = true
        /// The curves' title; a two-stage run adds "stage 1 (head)" and "stage 2 (STAGES)".
        public var title: String
        /// Keras' class_weight for the training loss; nil: every class weighs 1.
        public var classWeights: ClassWeights?
        /// The training batches are drawn class-balanced (the caller's provider does the
        /// drawing; the checkpoint records it so a resume draws the same).
        public var balancedSampler = false
        /// Precise BatchNorm at the end of every epoch, before validation and the checkpoint
        /// (see `BatchNormRecalibration`); nil: off.
        public var batchNormRecalibration: BatchNormRecalibration?

        public init(model: ModelConfig, classNames: [String], input: InputSpec, runFolder: URL, optimizer: OptimizerSpec, title: String = "training") {
            self.model = model; self.classNames = classNames; self.input = input
            self.runFolder = runFolder; self.optimizer = optimizer; self.title = title
        }
    }

    public enum Verify: Sendable { case off, summary, report }

    /// Weights a fresh model starts from: its trunk must load, its head may start fresh (as
    /// Keras' include_top=False) unless `headMustFit`.
    public struct StartingWeights {
        /// The file's path (messages name it).
        public var name: String
        /// The weights; nil: random.
        public var load: () throws -> WeightSet?
        /// Trunk weights the file lacks start from random values instead of stopping.
        public var allowMissing = false
        public var headMustFit = false

        public init(name: String, allowMissing: Bool = false, headMustFit: Bool = false, load: @escaping () throws -> WeightSet?) {
            self.name = name; self.allowMissing = allowMissing; self.headMustFit = headMustFit; self.load = load
        }
    }

    /// What a session has to say, in order. `description` is the line (or lines) as said.
    public enum Event: CustomStringConvertible {
        case resuming(folder: URL, epoch: Int, batch: Int?)
        /// A resume takes a setting that differs from the run's; `effect`: from when it applies.
        case settingTaken(SettingChange, effect: String)
        /// A resumed run has trained `epochs` epochs, as many as asked (`asked`) or more: nothing to do.
        case alreadyFinished(folder: URL, epochs: Int, asked: Int)
        /// The device, for a single process (a data-parallel job lists every rank's).
        case device(String)
        case model(ModelConfig, unfreeze: UnfreezeSpec, optimizer: OptimizerSpec)
        /// Gradient accumulation: `batches` batches of `batch` per optimiser step.
        case accumulating(batches: Int, batch: Int)
        /// Notes of the starting weights' load (layers paired by order, tensors left out).
        case loadNotes([String])
        /// The head in the starting weights did not fit: the trunk loaded, the head starts fresh.
        case headStartsFresh(file: String, details: String)
        case weightsLoaded(file: String, arrays: Int, fresh: [String])
        /// A warning: trunk weights the file lacks start from random values.
        case weightsMissing(file: String, arrays: [String])
        /// `head`: its architecture in words.
        case headFromTopModel(folder: String, arrays: Int, head: String)
        /// Verification asked for on the CPU: nothing to compare with.
        case verifyOnCPU
        case verified(Verification.Report, table: Bool)
        case secondStage(unfreeze: UnfreezeSpec, optimizer: OptimizerSpec)
        /// A stage finished; `best`: the run has validation data, so a best checkpoint.
        case finished(folder: URL, best: Bool)
        /// The model took the weights of its best epoch back (`restoreBest`); `measured`: the
        /// val_loss they give now, which is the recorded one.
        case restoredBest(epoch: Int, valLoss: Double, measured: Double)
        /// A warning: unreadable images skipped in an epoch.
        case skippedImages(newly: Int, total: Int)
        /// BatchNorm recalibration is on: `layers` BatchNorm layers recalibrated (0: the model
        /// has none that trains its statistics, so it does nothing) over at most `batches` batches.
        case batchNormRecalibration(layers: Int, batches: Int)

        /// Warnings go to stderr.
        public var isWarning: Bool {
            switch self {
            case .weightsMissing, .skippedImages: return true
            default: return false
            }
        }

        public var description: String {
            switch self {
            case let .resuming(folder, epoch, batch):
                return "resuming \(folder.path) after epoch \(epoch)\(batch.map { ", batch \($0) of epoch \(epoch + 1)" } ?? "")"
            case let .settingTaken(change, effect):
                return "note: resuming with another \(change.description): \(effect)"
            case let .alreadyFinished(folder, epochs, asked):
                return "the run in \(folder.path) has finished its \(epochs) epochs\(asked < epochs ? " (\(asked) asked)" : ""): nothing to train. "
                    + "To train it further, resume it with more epochs (such as \(epochs * 2))"
            case let .device(name):
                return "device: \(name)"
            case let .model(config, unfreeze, optimizer):
                return "model: \(config.trunk.rawValue) \(config.inputShape), \(config.classes) \(config.multiLabel ? "labels (multi-label: sigmoid per label)" : "classes"), unfreeze \(unfreeze), \(optimizer.summary)"
            case let .accumulating(batches, batch):
                return "gradient accumulation: \(batches) batches of \(batch) per optimiser step (as batch \(batches * batch); BatchNorm statistics per batch of \(batch))"
            case let .loadNotes(lines):
                return lines.joined(separator: "\n")
            case let .headStartsFresh(file, details):
                return "the head in \(file) does not fit this task (\(details)): the trunk loaded, the head starts fresh"
            case let .weightsLoaded(file, arrays, fresh):
                return "loaded \(arrays) arrays from \(file); new: \(fresh.joined(separator: ", "))"
            case let .weightsMissing(file, arrays):
                return "\(file) has no weights for \(arrays.count) trunk arrays (\(arrays.prefix(4).joined(separator: ", "))\(arrays.count > 4 ? ", ..." : "")): "
                    + "they start from random values"
            case let .headFromTopModel(folder, arrays, head):
                return "head initialised from \(folder) (\(arrays) arrays): \(head)"
            case .verifyOnCPU:
                return "verify: the model runs on the CPU; there is no other device to check against it"
            case let .verified(report, table):
                return (table ? report.table + "\n" : "") + report.summary
            case let .secondStage(unfreeze, optimizer):
                return "stage 2: unfreeze \(unfreeze), \(optimizer.summary)"
            case let .finished(folder, best):
                return "run folder: \(folder.path) (last.json, \(best ? "best.json, " : "")history.csv, curves.svg)"
            case let .skippedImages(newly, total):
                return Trainer.skippedImages(newly: newly, total: total)
            case let .batchNormRecalibration(layers, batches):
                return layers == 0
                    ? "BatchNorm recalibration does nothing: no BatchNorm layer of this model normalises with batch statistics while it trains"
                    : "BatchNorm recalibration: the moving statistics of \(layers) BatchNorm layer\(layers == 1 ? "" : "s") are recomputed at each epoch's end "
                        + "over \(batches) training batches at most, before validation and the checkpoint"
            case let .restoredBest(epoch, valLoss, measured):
                return String(format: "restored the best weights: epoch %d (val_loss %.4f) from best.json; val_loss with them now %.4f "
                              + "(last.json keeps the last epoch's, for a resume)", epoch, valLoss, measured)
            }
        }

        /// Prints the event: warnings on stderr after "warning: ", the rest on stdout.
        public static func print(_ event: Event) {
            if event.isWarning {
                writeStandardError("warning: \(event)\n")
            } else if case .loadNotes(let lines) = event, lines.isEmpty {
                return
            } else {
                Swift.print(event.description)
            }
        }
    }

    /// What a session leaves: the trained model, its run (folder and checkpoint info) and the
    /// trainer of the last stage (its history).
    public struct Result {
        public var model: Model
        public var run: TrainingRun
        public var trainer: Trainer
    }

    public let configuration: Configuration
    public let device: Device
    /// Opens the CPU device that verification compares with and a top model is restored on.
    public var referenceDevice: (() throws -> Device)?
    /// Several processes training together; nil: this process alone.
    public var job: TrainingJob?
    /// Given to every trainer of the session, in this order.
    public var callbacks: [TrainingCallback] = []
    public var report: (Event) -> Void = Event.print

    public init(_ configuration: Configuration, device: Device, referenceDevice: (() throws -> Device)? = nil) {
        self.configuration = configuration
        self.device = device
        self.referenceDevice = referenceDevice
    }

    var lastCheckpoint: URL { configuration.runFolder.appendingPathComponent("last.json") }

    /// Trains on `train` (validating on `validation` after every epoch): one stage, or two
    /// with `headEpochs`. A resumed two-stage run continues in the stage its checkpoint is in.
    @discardableResult
    public func run(train: BatchProvider, validation: BatchProvider?) throws -> Result {
        let c = configuration
        if let n = c.earlyStopping, validation == nil { throw VGGTLError.earlyStoppingWithoutValidation(patience: n) }
        if c.restoreBest, validation == nil { throw VGGTLError.restoreBestWithoutValidation }
        // The folder is this run's until it returns or throws (an interruption included); a
        // process that dies leaves a lock that the next run takes over. Rank 0 holds it for a job.
        let lock = job?.isPrimary ?? true ? try FolderLock(c.runFolder) : nil
        defer { lock?.release() }
        var info = CheckpointInfo(model: c.model, classNames: c.classNames, input: c.input, featureTrunk: c.featureTrunk,
                                  unfreeze: c.unfreeze.description, optimizer: c.optimizer, optimizerIterations: 0,
                                  schedule: c.schedule.over(epochs: c.epochs), epoch: 0, history: History(), seed: c.seed,
                                  dropoutSteps: [:], weightsFile: "")
        info.epochs = c.headEpochs + c.epochs
        info.trainingSamples = Self.sampleCount(train)
        info.accumulate = c.accumulate
        (info.classWeights, info.sampler) = (c.classWeights, c.balancedSampler ? "balanced" : nil)
        info.batchNormRecalibration = c.batchNormRecalibration
        guard c.headEpochs > 0 else {
            let s = try stage(info: info, optimizer: c.optimizer, unfreeze: c.unfreeze, epochs: c.epochs,
                              schedule: c.schedule.over(epochs: c.epochs), title: c.title, train: train, validation: validation)
            return try restoringBest(s.result, validation: s.split.validation)
        }
        var second = c.optimizer
        second.learningRate = c.optimizer.learningRate / 10
        let secondTitle = "\(c.title) stage 2 (\(c.unfreeze))"
        // Stage 2 has begun once an epoch past the head epochs has started.
        let saved = c.resume ? try? Checkpoint.load(lastCheckpoint) : nil
        if let saved, saved.epoch > c.headEpochs || (saved.epoch == c.headEpochs && saved.batchesDone != nil) {
            report(.secondStage(unfreeze: c.unfreeze, optimizer: second))
            let s = try stage(info: info, optimizer: second, unfreeze: c.unfreeze, epochs: c.headEpochs + c.epochs,
                              schedule: c.schedule.over(epochs: c.epochs), scheduleStart: c.headEpochs, title: secondTitle,
                              train: train, validation: validation)
            return try restoringBest(s.result, validation: s.split.validation)
        }
        // Stage 1: the head alone on the frozen trunk, at the given rate.
        var first = info
        first.unfreeze = UnfreezeSpec.none.description
        let s = try stage(info: first, optimizer: c.optimizer, unfreeze: .none, epochs: c.headEpochs,
                          schedule: c.schedule.over(epochs: c.headEpochs), title: "\(c.title) stage 1 (head)",
                          train: train, validation: validation)
        // Stage 2: unfreeze and continue at a tenth of the rate, with fresh optimizer state.
        try s.model.check(c.unfreeze)
        s.model.apply(c.unfreeze)
        let trainer = makeTrainer(s.model, optimizer: second.make(), schedule: c.schedule.over(epochs: c.epochs), scheduleStart: c.headEpochs)
        trainer.coordinator = s.trainer.coordinator
        trainer.verbose = s.trainer.verbose
        s.run.info.unfreeze = c.unfreeze.description
        s.run.info.optimizer = second
        report(.secondStage(unfreeze: c.unfreeze, optimizer: second))
        reportRecalibration(s.model)
        try s.run.fit(trainer, train: s.split.train, validation: s.split.validation, epochs: c.headEpochs + c.epochs, title: secondTitle)
        return try restoringBest(Result(model: s.model, run: s.run, trainer: trainer), validation: s.split.validation)
    }

    /// With `restoreBest`: loads best.json's weights into the trained model (the optimizer state
    /// stays the last step's, as Keras' does) and measures val_loss with them, which says that
    /// they are the best epoch's.
    private func restoringBest(_ result: Result, validation: BatchProvider?) throws -> Result {
        guard configuration.restoreBest, let validation else { return result }
        // Every process reads the file rank 0 wrote at the end of the last epoch: wait for it.
        try result.trainer.coordinator?.checkpointWritten()
        let best = configuration.runFolder.appendingPathComponent("best.json")
        let info = try Checkpoint.load(best)
        try loadWeights(try WeightFile.load(configuration.runFolder.appendingPathComponent(info.weightsFile)), into: result.model.layers)
        let recorded = info.history.records.last?.valLoss ?? .nan
        let measured = try result.trainer.evaluate(validation).metrics.meanLoss
        report(.restoredBest(epoch: info.epoch, valLoss: recorded, measured: measured))
        return result
    }

    /// One stage up to epoch `epochs`: resumed or fresh, verified, joined, trained.
    private func stage(info baseInfo: CheckpointInfo, optimizer spec: OptimizerSpec, unfreeze: UnfreezeSpec, epochs: Int,
                       schedule: LearningRateSchedule, scheduleStart: Int = 0, title: String,
                       train: BatchProvider, validation: BatchProvider?) throws -> Stage {
        let c = configuration, dir = c.runFolder
        var info = baseInfo
        let model: Model, optimizer: Optimizer
        if c.resume {
            guard FileManager.default.fileExists(atPath: lastCheckpoint.path) else { throw VGGTLError.nothingToResume(folder: dir.path) }
            optimizer = spec.make()
            let saved = try Checkpoint.load(lastCheckpoint)
            guard saved.classNames == baseInfo.classNames else {
                throw VGGTLError.resumedClassesDiffer(folder: dir.path, saved: saved.classNames, now: baseInfo.classNames)
            }
            let check = ResumeCheck(saved: saved, model: c.model, input: c.input, featureTrunk: c.featureTrunk, trainingSamples: baseInfo.trainingSamples,
                                    optimizer: spec, unfreeze: unfreeze.description, schedule: baseInfo.schedule, epochs: baseInfo.epochs ?? c.epochs,
                                    accumulate: c.accumulate, classWeights: baseInfo.classWeights, sampler: baseInfo.sampler,
                                    batchNormRecalibration: c.batchNormRecalibration)
            let refused = check.refused
            guard refused.isEmpty else { throw VGGTLError.resumeRefused(folder: dir.path, changes: refused) }
            (info, model) = try Checkpoint.restore(lastCheckpoint, on: device, optimizer: optimizer)
            if info.batchesDone == nil, let total = baseInfo.epochs, info.epoch >= total {
                // Nothing to train: said, and nothing in the folder changes.
                report(.alreadyFinished(folder: dir, epochs: info.epoch, asked: total))
                let trainer = makeTrainer(model, optimizer: optimizer, schedule: schedule, scheduleStart: scheduleStart)
                trainer.history = info.history
                let run = try TrainingRun(dir: dir, info: info, tensorboard: nil, writes: false)
                return Stage(model: model, run: run, trainer: trainer, split: .single(train: train, validation: validation, batch: c.batch))
            }
            report(.resuming(folder: dir, epoch: info.epoch, batch: info.batchesDone))
            check.taken.forEach(report)
            // What the resume took is what the run records from now on.
            (info.optimizer, info.schedule, info.epochs, info.accumulate) = (spec, baseInfo.schedule, baseInfo.epochs, c.accumulate)
            info.batchNormRecalibration = c.batchNormRecalibration
            info.trainingSamples = baseInfo.trainingSamples ?? info.trainingSamples
        } else {
            if FileManager.default.fileExists(atPath: lastCheckpoint.path) { throw VGGTLError.runExists(folder: dir.path) }
            model = try freshModel(unfreeze: unfreeze)
            optimizer = spec.make()
        }
        let trainer = makeTrainer(model, optimizer: optimizer, schedule: schedule, scheduleStart: scheduleStart)
        if c.verify != .off { try verify(model, on: train) }
        let split = try job?.split(train: train, validation: validation, batch: c.batch, resuming: c.resume ? info : nil)
            ?? .single(train: train, validation: validation, batch: c.batch)
        let distributed = job?.isDistributed ?? false
        if !distributed { report(.device(device.name)) }
        report(.model(c.model, unfreeze: unfreeze, optimizer: spec))
        if c.accumulate > 1 { report(.accumulating(batches: c.accumulate, batch: c.batch)) }
        // The head stage of a two-stage run has no BatchNorm to recalibrate; the next stage says.
        reportRecalibration(model, quietIfNone: unfreeze == .none && c.headEpochs > 0)
        try job?.join(trainer, split: split, info: info)
        let run = try TrainingRun(dir: dir, info: info, tensorboard: c.tensorboard, writes: job?.isPrimary ?? true)
        run.splitRecord = split.record
        if c.handlesSignals { TrainingInterrupt.install(alsoUSR1: distributed) }
        try run.fit(trainer, train: split.train, validation: split.validation, epochs: epochs, title: title)
        report(.finished(folder: dir, best: validation != nil))
        return Stage(model: model, run: run, trainer: trainer, split: split)
    }

    /// The model a fresh run starts from: built with the session's seed, its starting weights
    /// and top model loaded, `unfreeze` applied. The learning-rate finder starts from it too,
    /// so that its sweep describes the stage a run would train.
    public func freshModel(unfreeze: UnfreezeSpec) throws -> Model {
        let model = try Model(configuration.model, on: device, seed: configuration.seed)
        try model.check(unfreeze)
        try loadStartingWeights(into: model)
        model.apply(unfreeze)
        return model
    }

    /// The samples of a provider the session knows (images or features in memory); nil: unknown.
    static func sampleCount(_ provider: BatchProvider) -> Int? {
        (provider as? ArrayBatches)?.count ?? (provider as? BatchLoader)?.indices.count
    }

    private struct Stage {
        var model: Model, run: TrainingRun, trainer: Trainer, split: TrainingSplit
        var result: Result { Result(model: model, run: run, trainer: trainer) }
    }

    func makeTrainer(_ model: Model, optimizer: Optimizer, schedule: LearningRateSchedule, scheduleStart: Int) -> Trainer {
        let trainer = Trainer(model: model, optimizer: optimizer, schedule: schedule)
        trainer.scheduleStartEpoch = scheduleStart
        trainer.classWeights = configuration.classWeights?.values
        trainer.earlyStoppingPatience = configuration.earlyStopping
        trainer.accumulate = configuration.accumulate
        trainer.batchNormRecalibration = configuration.batchNormRecalibration
        trainer.strictImages = configuration.strictImages
        trainer.callbacks = callbacks
        trainer.onSkippedImages = { [report] in report(.skippedImages(newly: $0, total: $1)) }
        return trainer
    }

    /// With recalibration on: which layers it recalibrates, or that it does nothing.
    private func reportRecalibration(_ model: Model, quietIfNone: Bool = false) {
        guard let r = configuration.batchNormRecalibration else { return }
        let layers = model.recalibratedBatchNorms.count
        if layers == 0, quietIfNone { return }
        report(.batchNormRecalibration(layers: layers, batches: r.maxBatches))
    }

    private func reference() throws -> Device {
        guard let referenceDevice else {
            throw VGGTLError.invalidArgument("the training session needs a reference device (the CPU) to verify or to restore a top model: set its referenceDevice")
        }
        return try referenceDevice()
    }

    /// The first training batch on the model's device and on the reference device; stops on a
    /// disagreement.
    private func verify(_ model: Model, on train: BatchProvider) throws {
        guard model.device.kind != .cpu else { report(.verifyOnCPU); return }
        guard let batch = train.batches(epoch: 0).next() else { return }
        let r = try Verification.firstBatch(model, batch: batch, cpu: reference)
        report(.verified(r, table: configuration.verify == .report))
        guard r.agrees else { throw r.failure }
    }

    /// The starting weights (the trunk must load; the head may start fresh) and the top model.
    private func loadStartingWeights(into model: Model) throws {
        let c = configuration
        if let w = c.weights, let set = try w.load() {
            let trunkNames = Set(model.trunkLayers.map(\.name))
            let r = try loadWeights(set, into: model.kerasOrderedLayers, skipMissing: w.allowMissing, mayStartFresh: { !trunkNames.contains($0) })
            let file = URL(fileURLWithPath: w.name).lastPathComponent
            report(.loadNotes(r.notes(file: w.name)))
            if !r.mismatched.isEmpty {
                let details = r.mismatched.prefix(2).joined(separator: "; ") + (r.mismatched.count > 2 ? "; ..." : "")
                guard !w.headMustFit else { throw VGGTLError.headDoesNotFit(file: file, details: details) }
                report(.headStartsFresh(file: file, details: details))
            }
            let fresh = model.weightedLayers.map(\.name).filter { layer in !r.loaded.contains { $0.hasPrefix(layer + "/") } }
            report(.weightsLoaded(file: file, arrays: r.loaded.count, fresh: fresh))
            if !r.skipped.isEmpty { report(.weightsMissing(file: file, arrays: r.skipped)) }
        }
        if let folder = c.topModel {
            let top = try Checkpoint.preferred(in: URL(fileURLWithPath: folder))
            let (topInfo, topNet) = try Checkpoint.restore(top, on: try reference())
            guard topInfo.classNames == c.classNames else {
                throw VGGTLError.topModelClassesDiffer(folder: folder, trained: topInfo.classNames, now: c.classNames)
            }
            let r = try loadWeights(weightSet(of: topNet.layers), into: model.headLayers)
            let head = topInfo.model
            report(.headFromTopModel(folder: folder, arrays: r.loaded.count,
                                     head: "\(head.headPooling.rawValue), \(head.headHidden == 0 ? "no hidden layer" : "\(head.headHidden) hidden units, dropout \(head.headDropout)")"))
        }
    }
}
