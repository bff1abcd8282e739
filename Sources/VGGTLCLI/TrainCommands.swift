import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain
import VGGTLDistributed

/// The input size a command uses without --size: `side` (the command's, the tutorials') for
/// backbones that keep it (VGG16), else the backbone's own (`Backbone.commandSize`).
func defaultSize(_ trunk: ModelConfig.Trunk, vgg side: Int) -> (Int, Int) {
    let s = trunk.backbone?.commandSize(default: side) ?? side
    return (s, s)
}

/// `valLabels`: `--val-labels`, the labels of a multi-label run's --val folder. A multi-label
/// --val-split is a seeded random split (there is no one class per image to stratify by).
func validationSplit(_ source: ImageSource, valDir: String?, valSplit: Double?, valLabels: String? = nil, seed: UInt64) throws
    -> (train: [Int], val: ImageSource?, valIndices: [Int]?) {
    if valLabels != nil, !source.isMultiLabel { throw VGGTLError.invalidArgument("--val-labels is for a multi-label run: give --labels too") }
    if valLabels != nil, valDir == nil { throw VGGTLError.invalidArgument("--val-labels lists the images of --val: give --val DIR too") }
    if let valDir, source.isMultiLabel {
        guard valSplit == nil else { throw VGGTLError.invalidArgument("use either --val or --val-split, not both") }
        guard let valLabels else {
            throw VGGTLError.invalidArgument("--val \(valDir) with --labels: give --val-labels FILE (the CSV of --val's images), or hold out part of --data with --val-split")
        }
        let v = try multiLabelSource(data: valDir, labels: valLabels, flag: "--val", labelsFlag: "--val-labels")
        guard v.classNames == source.classNames else {
            throw VGGTLError.invalidArgument("--val-labels \(valLabels) has labels \(v.classNames), but --labels has \(source.classNames); both files must use the same labels")
        }
        return (Array(0..<source.count), v, nil)
    }
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

extension TrainingOptions {
    /// The session these flags ask for: `config`'s model, data and title, with the run folder,
    /// epochs, optimizer, schedule and checks of the flags; MPI through `MPITrainingJob`, the CPU
    /// of the knobs as reference device, the run's seams' callbacks and the events worded as
    /// the CLI words them.
    /// `labels`: the training labels (class weights and the imbalance warning count them).
    func session(_ config: TrainingSession.Configuration, labels: [Int], device: Device, global: GlobalOptions) throws -> TrainingSession {
        var c = config
        if c.model.multiLabel { try checkMultiLabelFlags(balance) }
        c.classWeights = try balance.classWeights(labels: labels, classNames: c.classNames)
        c.balancedSampler = balance.balancedSampler
        if let w = c.classWeights { print("class weights \(w.summary(classNames: c.classNames))") }
        if balance.balancedSampler { print("sampler: balanced (each class drawn equally often)") }
        if c.classWeights == nil, !balance.balancedSampler, !c.model.multiLabel, Job.isPrimary,
           let warning = imbalanceWarning(labels: labels, classNames: c.classNames, training: true) {
            stderr("warning: \(warning)")
        }
        c.runFolder = outURL
        (c.epochs, c.batch, c.accumulate, c.seed) = (epochs, batch, accumulate, global.seed)
        c.optimizer = try optimizerSpec()
        c.schedule = schedule
        (c.earlyStopping, c.strictImages, c.resume) = (earlyStopping, strict, resume)
        c.restoreBest = restoreBest
        c.batchNormRecalibration = batchNormRecalibration
        c.tensorboard = tensorboard.map { URL(fileURLWithPath: $0) }
        c.verify = verifyReport ? .report : verify ? .summary : .off
        let cpu = RunContext.current.knobs.settings.cpu
        let session = TrainingSession(c, device: device, referenceDevice: { try DeviceChoice.cpu.open(cpu: cpu) })
        session.job = MPITrainingJob(global: global, options: distributed)
        session.callbacks = RunContext.current.seams.trainingCallbacks
        session.report = FlagWording.report
        return session
    }
}

struct Finetune: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fine-tune a pretrained trunk on class folders: new head, chosen stages unfrozen (SGD 1e-4, momentum 0.9, 150x150 for VGG16).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var backbone: ModelOptions<FinetuneDefaults>
    @OptionGroup var weights: WeightsOptions
    @OptionGroup var images: DataOptions<FinetuneDefaults>
    @OptionGroup var multiLabel: LabelsOptions
    @OptionGroup var valLabels: ValidationLabelsOptions
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

    func validate() throws {
        guard headEpochs >= 0 else { throw VGGTLError.badFlag(flag: "--head-epochs", value: "\(headEpochs)", expected: "0 (one stage) or more epochs") }
    }

    func run() throws {
        let p = try prepare()
        try p.session.run(train: p.train, validation: p.validation)
    }

    /// Everything up to training, said as it is decided: the session (model, starting weights,
    /// unfrozen stages, optimizer) and the data. `vggtl lr-find` starts from it too.
    func prepare() throws -> (session: TrainingSession, train: BatchLoader, validation: BatchLoader?) {
        let requested = try backbone.trunk(bn: bn)
        let choice = try weights.choice(requested)
        let trunk = try choice.trunk(requested)
        let unfreezeSpec = try parseUnfreeze(unfreeze, freezeFirst: freezeFirst, default: Self.defaultUnfreeze(trunk))
        let device = try global.openDevice()
        let input = try image.spec(defaultSize: choice.inputSize ?? defaultSize(trunk, vgg: 150), defaultPreprocessing: choice.preprocessing)
        let source: ImageSource
        if let labels = multiLabel.labels {
            source = try multiLabelSource(data: images.data, labels: labels, flag: "--data", labelsFlag: "--labels")
        } else {
            let folders = try classFolders(images.data, flag: "--data")
            for w in folders.warnings { stderr("warning: \(w)") }
            source = folders
        }
        let split = try validationSplit(source, valDir: images.val, valSplit: images.valSplit, valLabels: valLabels.valLabels, seed: global.seed)
        var config = ModelConfig(trunk: trunk, inputShape: [input.height, input.width, 3], classes: source.classNames.count)
        config.multiLabel = source.isMultiLabel
        config.frozenBatchNormStatistics = !bnBatchStatistics
        if let topModel {
            // The head starts from the top model's weights: it has that model's architecture.
            let top = try Checkpoint.load(Checkpoint.preferred(in: URL(fileURLWithPath: topModel)))
            guard top.model.multiLabel == config.multiLabel else {
                throw VGGTLError.invalidArgument("--top-model \(topModel) has a \(top.model.multiLabel ? "multi-label" : "single-label") head, but this run is "
                    + "\(config.multiLabel ? "multi-label (--labels)" : "single-label"); train the top model on features of the same kind")
            }
            try head.apply(to: &config, topModel: top.model, folder: topModel)
        } else {
            try head.apply(to: &config)
        }
        let spec = try opts.optimizerSpec()
        let augment = try augmentation.augmentation()
        let train = BatchLoader(source: source, indices: split.train, batchSize: opts.batch, input: input,
                                augmentation: augment, shuffle: true, seed: global.seed, balanced: opts.balance.balancedSampler)
        let validation = split.val.map { BatchLoader(source: $0, indices: split.valIndices, batchSize: opts.batch, input: input, shuffle: false, seed: global.seed) }
        if let m = source as? MultiLabelSource { print(multiLabelSummary(m)) } else {
            print("found \(source.count) images in \(source.classNames.count) classes: \(source.classNames.joined(separator: ", "))")
        }
        print(choice.describe(input: input, requested: requested, preprocessFlag: image.preprocess != nil))
        if let augment { print("augmentation: \(augment.summary)") }
        var c = TrainingSession.Configuration(model: config, classNames: source.classNames, input: input, runFolder: opts.outURL, optimizer: spec,
                                              title: headEpochs > 0 ? "finetune" : "finetune (\(unfreezeSpec))")
        (c.unfreeze, c.headEpochs, c.topModel) = (unfreezeSpec, headEpochs, topModel)
        c.weights = .init(name: choice.name, allowMissing: allowMissingWeights, headMustFit: strictWeights, load: choice.load)
        return (try opts.session(c, labels: split.train.map(source.label), device: device, global: global), train, validation)
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a network from scratch (class folders, cifar10:DIR, fashion-mnist[:DIR]; Adam 1e-3, 32x32 for VGG16).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var backbone: ModelOptions<TrainDefaults>
    @OptionGroup var images: DataOptions<TrainDefaults>
    @OptionGroup var multiLabel: LabelsOptions
    @OptionGroup var valLabels: ValidationLabelsOptions
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
        let (trainSource, testSource): (ImageSource, ImageSource?)
        if let labels = multiLabel.labels {
            (trainSource, testSource) = (try multiLabelSource(data: images.data, labels: labels, flag: "--data", labelsFlag: "--labels"), nil)
        } else {
            (trainSource, testSource) = try DataSpec(parsing: images.data, flag: "--data").load()
        }
        let trunk = try backbone.trunk()
        let input = try image.spec(defaultSize: defaultSize(trunk, vgg: 32), defaultPreprocessing: .rescale)
        var config = ModelConfig(trunk: trunk, inputShape: [input.height, input.width, 3],
                                 includeTop: includeTop, classes: trainSource.classNames.count)
        config.multiLabel = trainSource.isMultiLabel
        try head.apply(to: &config)
        var split = try validationSplit(trainSource, valDir: images.val, valSplit: images.valSplit, valLabels: valLabels.valLabels, seed: global.seed)
        if split.val == nil, let testSource { split.val = testSource }
        if let limit { split.train = Array(split.train.prefix(limit)) }
        if let valLimit, let v = split.val { split.valIndices = Array((split.valIndices ?? Array(0..<v.count)).prefix(valLimit)) }
        let optimizer = try opts.optimizerSpec()
        let augment = try augmentation.augmentation()
        let train = BatchLoader(source: trainSource, indices: split.train, batchSize: opts.batch, input: input,
                                augmentation: augment, shuffle: true, seed: global.seed, balanced: opts.balance.balancedSampler)
        let validation = split.val.map { BatchLoader(source: $0, indices: split.valIndices, batchSize: max(opts.batch, 64), input: input, shuffle: false, seed: global.seed) }
        print("training on \(split.train.count) images in \(trainSource.classNames.count) \(trainSource.isMultiLabel ? "labels" : "classes")"
              + (validation.map { ", validating on \($0.indices.count)" } ?? ""))
        if let augment { print("augmentation: \(augment.summary)") }
        let c = TrainingSession.Configuration(model: config, classNames: trainSource.classNames, input: input, runFolder: opts.outURL,
                                              optimizer: optimizer, title: "train \(config.trunk.rawValue)")
        try opts.session(c, labels: split.train.map(trainSource.label), device: device, global: global).run(train: train, validation: validation)
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
