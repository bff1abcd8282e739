import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain
import VGGTLDistributed

/// Input options shared by commands that read images; `D` gives the command's defaults for help.
struct ImageOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: "Input size HxW (images are resized to it). (default: \(D.size))") var size: String?
    @Option(help: "caffe (Keras VGG16/ResNet50 preprocess_input) | torch | tf (Keras InceptionV3: x/127.5 - 1) | rescale (1/255). (default: \(D.preprocessing))") var preprocess: String?

    /// Sizes and modes are checked while parsing, before any device, weights or data is touched.
    func validate() throws {
        if let size { _ = try parseSize(size) }
        if let preprocess { let _: Preprocessing = try parseEnum(preprocess, flag: "--preprocess") }
    }

    func spec(defaultSize: (Int, Int), defaultPreprocessing: Preprocessing) throws -> InputSpec {
        let (h, w) = try size.map { try parseSize($0) } ?? defaultSize
        let p: Preprocessing = try preprocess.map { try parseEnum($0, flag: "--preprocess") } ?? defaultPreprocessing
        return InputSpec(height: h, width: w, preprocessing: p)
    }
}

/// `--augment [keras|cifar|none]` and the individual parameters that override a preset.
struct AugmentOptions: ParsableArguments {
    @Option(help: "keras: the tutorials' ImageDataGenerator (rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip); cifar: the CIFAR-10 recipe (pad 4 px and crop back at a random offset, horizontal flip); none. A bare --augment means keras. (default: none)")
    var augment: String?
    @Option(help: "Rotation range in degrees (default: the --augment preset's, else none).") var rotation: Float?
    @Option(help: "Width and height shift range: a fraction of the size when < 1, else pixels (default: the --augment preset's, else none).") var shift: Float?
    @Option(help: "Zoom range z: zoom drawn in [1-z, 1+z] (default: the --augment preset's, else none).") var zoom: Float?
    @Option(help: "Shear range in degrees (default: the --augment preset's, else none).") var shear: Float?
    @Flag(inversion: .prefixedNo, help: "Random horizontal flips (default: the --augment preset's, else none).") var flip: Bool?
    @Option(help: "Zero-pad by N pixels and crop back at a random offset (default: the --augment preset's, else none).") var padCrop: Int?

    func validate() throws { _ = try augmentation() }

    /// The preset with the given parameters replaced; nil when nothing is augmented.
    func augmentation() throws -> Augmentation? {
        var a = Augmentation()
        if let augment {
            guard let preset = Augmentation.presets[augment.lowercased()] else {
                throw VGGTLError.badFlag(flag: "--augment", value: augment, expected: "keras, cifar or none")
            }
            a = preset
        }
        for (flag, value) in [("--rotation", rotation), ("--shift", shift), ("--zoom", zoom), ("--shear", shear)] {
            if let value, !(value >= 0 && value.isFinite) { throw VGGTLError.badFlag(flag: flag, value: "\(value)", expected: "a range >= 0") }
        }
        if let zoom, zoom >= 1 { throw VGGTLError.badFlag(flag: "--zoom", value: "\(zoom)", expected: "a range in [0, 1) such as 0.2") }
        if let padCrop, padCrop < 0 { throw VGGTLError.badFlag(flag: "--pad-crop", value: "\(padCrop)", expected: "0 or more pixels") }
        if let rotation { a.rotation = rotation }
        if let shift { a.widthShift = shift; a.heightShift = shift }
        if let zoom { a.zoom = zoom }
        if let shear { a.shear = shear }
        if let flip { a.horizontalFlip = flip }
        if let padCrop { a.padCrop = padCrop }
        return a.isIdentity ? nil : a
    }
}

/// Head options (the tutorials' Flatten -> Dense(256, relu) -> Dropout(0.5) -> predictions).
struct HeadOptions: ParsableArguments {
    @Option(help: "Head pooling: flatten | gap (default: \(BackboneHelp.defaultPooling)).") var pooling: String?
    @Option(help: "Hidden units of the head's Dense layer (0: none).") var hidden = 256
    @Option(help: "Dropout rate after the hidden layer.") var dropout: Float = 0.5

    func validate() throws {
        var c = ModelConfig(classes: 2)
        try apply(to: &c)
    }

    /// Sets the head; without --pooling, the pooling the trunk's tutorials use (`features`: the
    /// trunk saved features came from).
    func apply(to c: inout ModelConfig, features: ModelConfig.Trunk? = nil) throws {
        c.headPooling = try pooling.map { try parseEnum($0, flag: "--pooling") } ?? (features ?? c.trunk).backbone?.defaultPooling ?? .flatten
        guard hidden >= 0 else { throw VGGTLError.badFlag(flag: "--hidden", value: "\(hidden)", expected: "0 or more units") }
        guard dropout >= 0, dropout < 1 else { throw VGGTLError.badFlag(flag: "--dropout", value: "\(dropout)", expected: "a rate in [0, 1)") }
        c.headHidden = hidden; c.headDropout = dropout
    }
}

/// The input size a command uses without --size: `side` (the command's, the tutorials') for
/// backbones that keep it (VGG16), else the backbone's own (`Backbone.commandSize`).
func defaultSize(_ trunk: ModelConfig.Trunk, vgg side: Int) -> (Int, Int) {
    let s = trunk.backbone?.commandSize(default: side) ?? side
    return (s, s)
}

func validationSplit(_ source: ImageSource, valDir: String?, valSplit: Double?, seed: UInt64) throws
    -> (train: [Int], val: ImageSource?, valIndices: [Int]?) {
    if let valDir {
        guard valSplit == nil else { throw VGGTLError.invalidArgument("use either --val or --val-split, not both") }
        let v = try classFolders(valDir, flag: "--val")
        guard v.classNames == source.classNames else {
            throw VGGTLError.invalidArgument("--val \(valDir) has classes \(v.classNames), but the training data has \(source.classNames); the folders must match")
        }
        return (Array(0..<source.count), v, nil)
    }
    if let valSplit {
        guard valSplit > 0, valSplit < 1 else { throw VGGTLError.badFlag(flag: "--val-split", value: "\(valSplit)", expected: "a fraction in (0, 1) such as 0.2") }
        let s = stratifiedSplit(labels: (0..<source.count).map(source.label), fraction: valSplit, seed: seed)
        return (s.train, source, s.validation)
    }
    return (Array(0..<source.count), nil, nil)
}

/// What `runTraining` set up, for the second stage of a two-stage fine-tune: the batches it
/// used (split between ranks under mpirun) and the trainer (with its coordinator).
struct TrainingSetup {
    var model: Model, run: TrainingRun, trainer: Trainer
    var train: BatchProvider, validation: BatchProvider?
}

/// Runs a training job in its run folder, resuming when asked. Under mpirun every rank runs it
/// on its share of the data; rank 0 alone prints and writes the folder. `scheduleStart`: the
/// epoch at which the learning-rate schedule starts (a second stage has its own).
@discardableResult
func runTraining<D>(config: ModelConfig, info baseInfo: CheckpointInfo, device: Device, global: GlobalOptions, opts: TrainingOptions<D>,
                    optimizerSpec: OptimizerSpec, unfreeze: UnfreezeSpec, prepare: (Model) throws -> Void,
                    train: BatchProvider, validation: BatchProvider?, firstBatch: () throws -> Batch?, title: String,
                    scheduleEpochs: Int? = nil, scheduleStart: Int = 0) throws -> TrainingSetup {
    if let n = opts.earlyStopping, validation == nil {
        throw VGGTLError.badFlag(flag: "--early-stopping", value: "\(n)", expected: "validation data to watch: add --val DIR or --val-split F (train-top: --val-features or --val-split)")
    }
    let dir = opts.outURL
    let lastJSON = dir.appendingPathComponent("last.json")
    var info = baseInfo
    let model: Model, optimizer: Optimizer
    if opts.resume {
        guard FileManager.default.fileExists(atPath: lastJSON.path) else {
            throw VGGTLError.invalidArgument("--resume: \(dir.path) has no last.json to resume from; run without --resume to start")
        }
        optimizer = optimizerSpec.make()
        let saved = try Checkpoint.load(lastJSON)
        guard saved.classNames == baseInfo.classNames else {
            throw VGGTLError.invalidArgument("--resume: the run in \(dir.path) was trained on \(saved.classNames.count) classes \(saved.classNames), "
                + "the data now has \(baseInfo.classNames.count) classes \(baseInfo.classNames); resume with the same data, or start a new run with another --out")
        }
        guard saved.model == config else {
            throw VGGTLError.invalidArgument("--resume: the run in \(dir.path) was started with another model or input size "
                + "(\(saved.model.trunk.rawValue) \(saved.model.inputShape), head \(saved.model.headHidden)); use the same flags or a new --out")
        }
        let restored = try Checkpoint.restore(lastJSON, on: device, optimizer: optimizer)
        info = restored.0; model = restored.1
        print("resuming \(dir.path) after epoch \(info.epoch)\(info.batchesDone.map { ", batch \($0) of epoch \(info.epoch + 1)" } ?? "")")
    } else {
        if FileManager.default.fileExists(atPath: lastJSON.path) {
            throw VGGTLError.invalidArgument("\(dir.path) already holds a run; add --resume to continue it or choose another --out")
        }
        model = try Model(config, on: device, seed: global.seed)
        try model.check(unfreeze)
        try prepare(model)
        model.apply(unfreeze)
        optimizer = optimizerSpec.make()
    }
    let trainer = Trainer(model: model, optimizer: optimizer, schedule: try LearningRateSchedule(parsing: opts.schedule, epochs: scheduleEpochs ?? opts.epochs))
    trainer.scheduleStartEpoch = scheduleStart
    trainer.earlyStoppingPatience = opts.earlyStopping
    trainer.strictImages = opts.strict
    trainer.callbacks = RunContext.current.seams.trainingCallbacks
    if opts.verify || opts.verifyReport {
        try verifyFirstBatch(model, batch: try firstBatch(), report: opts.verifyReport)
    }
    let comm = try Job.start(global)
    let split = try splitTraining(train: train, validation: validation, batch: opts.batch, resuming: opts.resume ? info : nil, comm: comm)
    if comm == nil { print("device: \(device.name)") }
    print("model: \(config.trunk.rawValue) \(config.inputShape), \(config.classes) classes, unfreeze \(unfreeze), \(optimizerSpec.summary)")
    if let comm {
        var data = [("training data", (train as? ShardableBatches)?.dataFingerprint ?? 0)]
        if let v = validation as? ShardableBatches { data.append(("validation data", v.dataFingerprint)) }
        _ = try joinDataParallel(trainer, comm: comm, split: split, options: opts.distributed, info: info, data: data)
    }
    let run = try TrainingRun(dir: dir, info: info, tensorboard: opts.tensorboard.map { URL(fileURLWithPath: $0) }, writes: Job.isPrimary)
    run.splitRecord = split.record
    // From here Ctrl-C/SIGTERM saves a checkpoint at the last finished batch and stops (under
    // mpirun also SIGUSR1, which mpirun passes on to every rank at once).
    TrainingInterrupt.install(alsoUSR1: comm != nil)
    try run.fit(trainer, train: split.train, validation: split.validation, epochs: opts.epochs, title: title)
    print("run folder: \(dir.path) (last.json, \(validation != nil ? "best.json, " : "")history.csv, curves.svg)")
    return TrainingSetup(model: model, run: run, trainer: trainer, train: split.train, validation: split.validation)
}

/// `--verify`: the first batch on the model's device against the CPU; stops on a disagreement.
func verifyFirstBatch(_ model: Model, batch: Batch?, report: Bool) throws {
    guard model.device.kind != .cpu else {
        print("verify: the model runs on the CPU; there is no other device to check against it")
        return
    }
    guard let batch else { return }
    let r = try Verification.firstBatch(model, batch: batch, cpu: { try DeviceChoice.cpu.open() })
    if report { print(r.table) }
    print(r.summary)
    guard r.agrees else { throw VGGTLError.invalidArgument(r.disagreement) }
}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fine-tune a pretrained trunk on class folders: new head, chosen stages unfrozen (SGD 1e-4, momentum 0.9, 150x150 for VGG16).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "\(BackboneHelp.models).") var model = "vgg16"
    @Option(help: "\(BackboneHelp.weights) | a run folder.") var weights = "imagenet"
    @Option(help: "Training images: one subfolder per class.") var data: String
    @Option(help: "Validation images (same class folders). (default: none)") var val: String?
    @Option(help: "Hold out this fraction of --data for validation instead. (default: none)") var valSplit: Double?
    @Option(help: "none | a stage (\(UnfreezeSpec.stagesByFamily)) and the stages after it | all | N (last N layers with weights). (default: \(BackboneHelp.defaultUnfreeze))") var unfreeze: String?
    @Option(help: "Freeze the first N layers as Keras counts model.layers (the InputLayer is 0; `vggtl summary` shows the cut); the rest train. (default: none)") var freezeFirst: Int?
    @Option(help: "Two-stage mode: train the head alone (trunk frozen) for this many epochs first, then unfreeze at a tenth of the rate; each stage has its own --schedule.") var headEpochs = 0
    @OptionGroup var augmentation: AugmentOptions
    @Option(help: "Start the head from a train-top run folder (the tutorials' top_model_weights). (default: none)") var topModel: String?
    @Flag(help: "The trunk has BatchNorm (VGG16-BN; same as --model vgg16-bn); found from the weights when they have BatchNorm tensors.") var bn = false
    @Flag(help: "Let unfrozen BatchNorm layers normalise with batch statistics (default: their moving statistics, as Keras advises for fine-tuning).") var bnBatchStatistics = false
    @Flag(help: "Stop when the head in --weights does not fit this task (default: the trunk loads and the head starts fresh, as Keras' include_top=False).") var strictWeights = false
    @Flag(help: "Start trunk layers that --weights lacks from random values instead of stopping.") var allowMissingWeights = false
    @OptionGroup var image: ImageOptions<FinetuneDefaults>
    @OptionGroup var head: HeadOptions
    @OptionGroup var opts: TrainingOptions<FinetuneDefaults>

    func run() throws {
        let requested = try parseTrunk(model, bn: bn)
        let choice = try WeightsChoice(weights, trunk: requested)
        let trunk = try choice.trunk(requested)
        let unfreezeSpec = try parseUnfreeze(unfreeze, freezeFirst: freezeFirst, default: Self.defaultUnfreeze(trunk))
        let device = try global.openDevice()
        let input = try image.spec(defaultSize: choice.inputSize ?? defaultSize(trunk, vgg: 150), defaultPreprocessing: choice.preprocessing)
        let source = try classFolders(data, flag: "--data")
        for w in source.warnings { stderr("warning: \(w)") }
        let split = try validationSplit(source, valDir: val, valSplit: valSplit, seed: global.seed)
        var config = ModelConfig(trunk: trunk, inputShape: [input.height, input.width, 3], classes: source.classNames.count)
        config.frozenBatchNormStatistics = !bnBatchStatistics
        try head.apply(to: &config)
        let spec = try opts.optimizerSpec()
        let augment = try augmentation.augmentation()
        let train = BatchLoader(source: source, indices: split.train, batchSize: opts.batch, input: input,
                                augmentation: augment, shuffle: true, seed: global.seed)
        let validation = split.val.map { BatchLoader(source: $0, indices: split.valIndices, batchSize: opts.batch, input: input, shuffle: false, seed: global.seed) }
        let info = CheckpointInfo(model: config, classNames: source.classNames, input: input, featureTrunk: nil, unfreeze: unfreezeSpec.description,
                                  optimizer: spec, optimizerIterations: 0, schedule: try LearningRateSchedule(parsing: opts.schedule, epochs: opts.epochs),
                                  epoch: 0, history: History(), seed: global.seed, dropoutSteps: [:], weightsFile: "")
        print("found \(source.count) images in \(source.classNames.count) classes: \(source.classNames.joined(separator: ", "))")
        print(choice.describe(input: input, requested: requested, preprocessFlag: image.preprocess != nil))
        if let augment { print("augmentation: \(augment.summary)") }
        let prepare: (Model) throws -> Void = { model in
            if let set = try choice.load() {
                // Head layers may start fresh (include_top=False); the trunk must load.
                let trunkNames = Set(model.trunkLayers.map(\.name))
                let r = try loadWeights(set, into: model.kerasOrderedLayers, skipMissing: allowMissingWeights, mayStartFresh: { !trunkNames.contains($0) })
                let file = URL(fileURLWithPath: choice.name).lastPathComponent
                reportLoadNotes(r, file: choice.name)
                if !r.mismatched.isEmpty {
                    let what = "the head in \(file) does not fit this task (\(r.mismatched.prefix(2).joined(separator: "; "))\(r.mismatched.count > 2 ? "; ..." : ""))"
                    guard !strictWeights else {
                        throw VGGTLError.invalidArgument("--strict-weights: \(what); drop --strict-weights to start the head fresh")
                    }
                    print("\(what): the trunk loaded, the head starts fresh (--strict-weights makes this an error)")
                }
                let fresh = model.weightedLayers.map(\.name).filter { layer in !r.loaded.contains { $0.hasPrefix(layer + "/") } }
                print("loaded \(r.loaded.count) arrays from \(file); new: \(fresh.joined(separator: ", "))")
                if !r.skipped.isEmpty { stderr("warning: \(file) has no weights for \(r.skipped.count) trunk arrays (\(r.skipped.prefix(4).joined(separator: ", "))\(r.skipped.count > 4 ? ", ..." : "")): they start from random values") }
            }
            if let topModel {
                let top = try Checkpoint.preferred(in: URL(fileURLWithPath: topModel))
                let (topInfo, topNet) = try Checkpoint.restore(top, on: DeviceChoice.cpu.open(cpu: RunContext.current.knobs.settings.cpu))
                guard topInfo.classNames == source.classNames else {
                    throw VGGTLError.invalidArgument("--top-model \(topModel) was trained on \(topInfo.classNames.count) classes \(topInfo.classNames), "
                        + "--data has \(source.classNames.count) classes \(source.classNames); the class folders must match")
                }
                let r = try loadWeights(weightSet(of: topNet.layers), into: model.headLayers)
                print("head initialised from \(topModel) (\(r.loaded.count) arrays)")
            }
        }
        var spec2 = spec
        spec2.learningRate = spec.learningRate / 10
        // A resumed two-stage run continues in the stage its checkpoint is in: stage 2 once an
        // epoch past the head epochs has started.
        let saved = opts.resume ? try? Checkpoint.load(opts.outURL.appendingPathComponent("last.json")) : nil
        let inStage2 = saved.map { $0.epoch > headEpochs || ($0.epoch == headEpochs && $0.batchesDone != nil) } ?? false
        // Stage 2 runs epochs headEpochs+1 ... headEpochs+epochs with its own schedule over its own epochs.
        if headEpochs > 0 && inStage2 {
            var stage2 = opts
            stage2.epochs = headEpochs + opts.epochs
            print("stage 2: unfreeze \(unfreezeSpec), \(spec2.summary)")
            _ = try runTraining(config: config, info: info, device: device, global: global, opts: stage2, optimizerSpec: spec2,
                                unfreeze: unfreezeSpec, prepare: prepare, train: train, validation: validation,
                                firstBatch: { train.batches(epoch: 0).next() }, title: "finetune stage 2 (\(unfreezeSpec))",
                                scheduleEpochs: opts.epochs, scheduleStart: headEpochs)
        } else if headEpochs > 0 {
            // Stage 1: the head alone on the frozen trunk, at the given rate, its schedule over the head epochs.
            var stage1 = opts
            stage1.epochs = headEpochs
            var info1 = info
            info1.unfreeze = UnfreezeSpec.none.description
            let stage = try runTraining(config: config, info: info1, device: device, global: global, opts: stage1, optimizerSpec: spec,
                                        unfreeze: .none, prepare: prepare, train: train, validation: validation,
                                        firstBatch: { train.batches(epoch: 0).next() }, title: "finetune stage 1 (head)")
            let (model, run) = (stage.model, stage.run)
            // Stage 2: unfreeze and continue at a tenth of the rate, with fresh optimizer state.
            try model.check(unfreezeSpec)
            model.apply(unfreezeSpec)
            let trainer = Trainer(model: model, optimizer: spec2.make(), schedule: try LearningRateSchedule(parsing: opts.schedule, epochs: opts.epochs))
            trainer.scheduleStartEpoch = headEpochs
            trainer.earlyStoppingPatience = opts.earlyStopping
            trainer.strictImages = opts.strict
            trainer.coordinator = stage.trainer.coordinator
            trainer.verbose = stage.trainer.verbose
            trainer.callbacks = stage.trainer.callbacks
            run.info.unfreeze = unfreezeSpec.description
            run.info.optimizer = spec2
            print("stage 2: unfreeze \(unfreezeSpec), \(spec2.summary)")
            try run.fit(trainer, train: stage.train, validation: stage.validation, epochs: headEpochs + opts.epochs, title: "finetune stage 2 (\(unfreezeSpec))")
        } else {
            _ = try runTraining(config: config, info: info, device: device, global: global, opts: opts, optimizerSpec: spec,
                                unfreeze: unfreezeSpec, prepare: prepare, train: train, validation: validation,
                                firstBatch: { train.batches(epoch: 0).next() }, title: "finetune (\(unfreezeSpec))")
        }
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a network from scratch (class folders, cifar10:DIR, fashion-mnist[:DIR]; Adam 1e-3, 32x32 for VGG16).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "\(BackboneHelp.models).") var model = "vgg16-bn"
    @Option(help: "Class folders, cifar10:DIR or fashion-mnist[:DIR].") var data: String
    @Option(help: "Validation images (class folders). (default: a built-in dataset's test split, else none)") var val: String?
    @Option(help: "Hold out this fraction of --data for validation instead. (default: none)") var valSplit: Double?
    @Flag(help: "Keras' top (VGG16: fc1 4096, fc2 4096, predictions; ResNet50, InceptionV3: avg_pool, predictions) instead of the tutorials' head.") var includeTop = false
    @OptionGroup var augmentation: AugmentOptions
    @Option(help: "Use only the first N training images (quick runs). (default: all)") var limit: Int?
    @Option(help: "Validate on only the first N validation images (quick runs). (default: all)") var valLimit: Int?
    @OptionGroup var image: ImageOptions<TrainDefaults>
    @OptionGroup var head: HeadOptions
    @OptionGroup var opts: TrainingOptions<TrainDefaults>

    func validate() throws {
        if let limit, limit < 1 { throw VGGTLError.badFlag(flag: "--limit", value: "\(limit)", expected: "at least 1 image") }
        if let valLimit, valLimit < 1 { throw VGGTLError.badFlag(flag: "--val-limit", value: "\(valLimit)", expected: "at least 1 image") }
    }

    func run() throws {
        let device = try global.openDevice()
        let spec = try DataSpec(parsing: data, flag: "--data")
        let (trainSource, testSource) = try spec.load()
        let trunk = try parseTrunk(model)
        let input = try image.spec(defaultSize: defaultSize(trunk, vgg: 32), defaultPreprocessing: .rescale)
        var config = ModelConfig(trunk: trunk, inputShape: [input.height, input.width, 3],
                                 includeTop: includeTop, classes: trainSource.classNames.count)
        try head.apply(to: &config)
        var split = try validationSplit(trainSource, valDir: val, valSplit: valSplit, seed: global.seed)
        if split.val == nil, let testSource { split.val = testSource }
        if let limit { split.train = Array(split.train.prefix(limit)) }
        if let valLimit, let v = split.val { split.valIndices = Array((split.valIndices ?? Array(0..<v.count)).prefix(valLimit)) }
        let optimizer = try opts.optimizerSpec()
        let augment = try augmentation.augmentation()
        let train = BatchLoader(source: trainSource, indices: split.train, batchSize: opts.batch, input: input,
                                augmentation: augment, shuffle: true, seed: global.seed)
        let validation = split.val.map { BatchLoader(source: $0, indices: split.valIndices, batchSize: max(opts.batch, 64), input: input, shuffle: false, seed: global.seed) }
        let info = CheckpointInfo(model: config, classNames: trainSource.classNames, input: input, featureTrunk: nil, unfreeze: "all",
                                  optimizer: optimizer, optimizerIterations: 0, schedule: try LearningRateSchedule(parsing: opts.schedule, epochs: opts.epochs),
                                  epoch: 0, history: History(), seed: global.seed, dropoutSteps: [:], weightsFile: "")
        print("training on \(split.train.count) images in \(trainSource.classNames.count) classes"
              + (validation.map { ", validating on \($0.indices.count)" } ?? ""))
        if let augment { print("augmentation: \(augment.summary)") }
        _ = try runTraining(config: config, info: info, device: device, global: global, opts: opts, optimizerSpec: optimizer, unfreeze: .all,
                            prepare: { _ in }, train: train, validation: validation,
                            firstBatch: { train.batches(epoch: 0).next() }, title: "train \(config.trunk.rawValue)")
    }
}

extension Finetune {
    /// The tutorials' fine-tuning cut: VGG16's last block, ResNet50's last stage, InceptionV3's top two blocks.
    static func defaultUnfreeze(_ trunk: ModelConfig.Trunk) -> UnfreezeSpec {
        (trunk.backbone ?? Backbones.default).defaultUnfreeze
    }
}

extension Sequence where Element: Hashable {
    func uniqued() -> [Element] { var seen = Set<Element>(); return filter { seen.insert($0).inserted } }
}
