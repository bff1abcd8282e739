import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels
import VGGTLTrain

// The option groups the commands share, each declared once. Where a group's defaults or help
// differ between commands, it is generic over the command's `CommandDefaults`.

/// The defaults and help texts that differ between commands, so that `--help` shows each
/// command's own. Every requirement has a default below; a command's type overrides what differs.
protocol CommandDefaults {
    /// `--model`.
    static var model: ModelConfig.Trunk { get }
    static var modelHelp: String { get }
    /// `--data`, `--val`, `--val-split`.
    static var dataHelp: String { get }
    static var valHelp: String { get }
    static var valSplitHelp: String { get }
    static var optimizer: OptimizerSpec.Kind { get }
    static var learningRate: Float { get }
    /// The input size, as help shows it.
    static var size: String { get }
    /// Where the preprocessing comes from, as help shows it.
    static var preprocessing: String { get }
    static var strictHelp: String { get }
}

extension CommandDefaults {
    static var model: ModelConfig.Trunk { .vgg16 }
    static var modelHelp: String { "Backbone." }
    static var dataHelp: String { "Training images: one subfolder per class." }
    static var valHelp: String { "Validation images (same class folders). (default: none)" }
    static var valSplitHelp: String { "Hold out this fraction of --data for validation instead. (default: none)" }
    static var optimizer: OptimizerSpec.Kind { .sgd }
    static var learningRate: Float { 1e-4 }
    static var size: String { "the size the weights carry, else 150x150" }
    static var preprocessing: String {
        "chosen from the weights: their vggtl metadata, else torch for PyTorch files, caffe for Keras files, rescale for --weights none"
    }
    static var strictHelp: String { "Stop at the first unreadable image instead of skipping it with a warning." }
}

enum FinetuneDefaults: CommandDefaults {}
enum ExtractDefaults: CommandDefaults {}

enum TrainDefaults: CommandDefaults {
    static var model: ModelConfig.Trunk { .vgg16BN }
    static var dataHelp: String { "Class folders, cifar10:DIR or fashion-mnist[:DIR]." }
    static var valHelp: String { "Validation images (class folders). (default: a built-in dataset's test split, else none)" }
    static var optimizer: OptimizerSpec.Kind { .adam }
    static var learningRate: Float { 1e-3 }
    static var size: String { "32x32" }
    static var preprocessing: String { "rescale" }
}

enum TrainTopDefaults: CommandDefaults {
    static var optimizer: OptimizerSpec.Kind { .rmsprop }
    static var learningRate: Float { 1e-3 }
    static var strictHelp: String {
        "Stop when the features' origin is unknown (no features.json) or --val-features came from other weights, size or preprocessing (default: a warning)."
    }
}

enum CompareDefaults: CommandDefaults {
    static var valHelp: String { "Test images (same class folders): scored after every epoch and at the end. (default: --val-split of --data)" }
    static var valSplitHelp: String { "Hold out this fraction of --data as test images instead. (default: 0.2 when --val is not given)" }
}

enum DemoDefaults: CommandDefaults {
    static var model: ModelConfig.Trunk { .vgg16BN }
    static var modelHelp: String { "The backbone of the source model." }
}

enum SummaryDefaults: CommandDefaults {}

/// `--model`: the backbone (the registry's names).
struct ModelOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: ArgumentHelp(D.modelHelp)) var model: ModelConfig.Trunk = D.model

    /// The trunk asked for; `bn` (the `--bn` flag of older command lines) means VGG16-BN.
    func trunk(bn: Bool = false) throws -> ModelConfig.Trunk {
        guard bn else { return model }
        // --bn names VGG16-BN: only its own family has the variant without BatchNorm.
        guard model.backbone?.family == Backbones.of(.vgg16BN)!.family else {
            throw VGGTLError.invalidArgument("--bn is for VGG16 (--model vgg16-bn); \(model.rawValue) has its BatchNorm already")
        }
        return .vgg16BN
    }
}

/// `--weights`: where the trunk's weights come from.
struct WeightsOptions: ParsableArguments {
    @Option(help: ArgumentHelp(BackboneHelp.weights)) var weights = "imagenet"

    /// What --weights names, resolved for the trunk asked for (`requested`).
    func choice(_ requested: ModelConfig.Trunk) throws -> WeightsChoice { try WeightsChoice(weights, trunk: requested) }
}

/// `--data`, `--val`, `--val-split`: training images and the images to validate (or test) on.
struct DataOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: ArgumentHelp(D.dataHelp)) var data: String
    @Option(help: ArgumentHelp(D.valHelp)) var val: String?
    @Option(help: ArgumentHelp(D.valSplitHelp)) var valSplit: Double?
}

/// Input options shared by commands that read images; `D` gives the command's defaults for help.
struct ImageOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: "Input size HxW (images are resized to it). (default: \(D.size))") var size: String?
    @Option(help: "Preprocessing. (default: \(D.preprocessing))") var preprocess: Preprocessing?

    /// Sizes are checked while parsing, before any device, weights or data is touched.
    func validate() throws {
        if let size { _ = try parseSize(size) }
    }

    func spec(defaultSize: (Int, Int), defaultPreprocessing: Preprocessing) throws -> InputSpec {
        let (h, w) = try size.map { try parseSize($0) } ?? defaultSize
        return InputSpec(height: h, width: w, preprocessing: preprocess ?? defaultPreprocessing)
    }
}

/// `--augment [keras|cifar|none]` and the individual parameters that override a preset.
struct AugmentOptions: ParsableArguments {
    @Option(help: "Augmentation preset; a bare --augment means keras. (default: none)")
    var augment: AugmentPreset?
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
        if let augment { a = augment.augmentation }
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
    @Option(help: "Head pooling. (default: \(BackboneHelp.defaultPooling))") var pooling: ModelConfig.Pooling?
    // Optional, so that a head taken from a --top-model run can tell what was asked for.
    @Option(help: "Hidden units of the head's Dense layer (0: none). (default: 256; finetune --top-model: the top model's)") var hidden: Int?
    @Option(help: "Dropout rate after the hidden layer. (default: 0.5; finetune --top-model: the top model's)") var dropout: Float?

    func validate() throws {
        var c = ModelConfig(classes: 2)
        try apply(to: &c)
    }

    /// Sets the head; without --pooling, the pooling the trunk's tutorials use (`features`: the
    /// trunk saved features came from).
    func apply(to c: inout ModelConfig, features: ModelConfig.Trunk? = nil) throws {
        c.headPooling = pooling ?? (features ?? c.trunk).backbone?.defaultPooling ?? .flatten
        let (hidden, dropout) = (self.hidden ?? 256, self.dropout ?? 0.5)
        guard hidden >= 0 else { throw VGGTLError.badFlag(flag: "--hidden", value: "\(hidden)", expected: "0 or more units") }
        guard dropout >= 0, dropout < 1 else { throw VGGTLError.badFlag(flag: "--dropout", value: "\(dropout)", expected: "a rate in [0, 1)") }
        c.headHidden = hidden; c.headDropout = dropout
    }

    /// Sets the head of `top` (a train-top run's model, in `folder`): its pooling and hidden
    /// units, which its weights need, and its dropout unless --dropout is given. A --pooling or
    /// --hidden that contradicts it is an error naming both.
    func apply(to c: inout ModelConfig, topModel top: ModelConfig, folder: String) throws {
        try apply(to: &c)
        var conflicts: [SettingChange] = []
        if let pooling, pooling != top.headPooling { conflicts.append(.init(.headPooling, saved: top.headPooling.rawValue, now: pooling.rawValue)) }
        if let hidden, hidden != top.headHidden { conflicts.append(.init(.headHidden, saved: "\(top.headHidden)", now: "\(hidden)")) }
        guard conflicts.isEmpty else { throw VGGTLError.topModelHeadDiffers(folder: folder, changes: conflicts) }
        (c.headPooling, c.headHidden, c.headDropout) = (top.headPooling, top.headHidden, dropout ?? top.headDropout)
    }
}

/// Options every training command shares; `D` gives the command's own defaults.
struct TrainingOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: "Run folder: checkpoints (last, best), history.csv, curves.svg.") var out: String
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Sum the gradients of N batches before each optimiser step: the step of batch x N in the memory of one batch (BatchNorm still uses each batch's own statistics).") var accumulate = 1
    @Option(help: "Learning rate.") var lr: Float = D.learningRate
    @Option(help: "Optimizer.") var optimizer: OptimizerSpec.Kind = D.optimizer
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(help: "L2 weight decay.") var weightDecay: Float = 0
    @Option(help: "Learning-rate schedule.") var schedule = LearningRateSchedule.constant
    @Option(help: "Stop when val_loss has not improved for N epochs (needs validation data). (default: off)") var earlyStopping: Int?
    @Flag(help: "End the run with the weights of its best epoch by val_loss (best.json), as Keras' restore_best_weights; last.json keeps the last epoch's for --resume.") var restoreBest = false
    @Flag(help: "Precise BatchNorm: at each epoch's end, before validation and the checkpoint, recompute the moving mean and variance of every BatchNorm layer that trains its statistics as the mean over training batches of their batch statistics (forward only; frozen layers untouched).") var bnRecalibrate = false
    @Option(help: "The training batches --bn-recalibrate uses at most (fvcore's default; fewer when the epoch has fewer).") var bnRecalibrateBatches = BatchNormRecalibration.defaultBatches
    @Option(help: "Write TensorBoard scalar event files into this folder. (default: none)") var tensorboard: String?
    @Flag(help: "Continue the run in --out where it stopped.") var resume = false
    @Flag(help: "Before training, run the first batch on the chosen device and on the CPU and stop if they disagree beyond float32 rounding.") var verify = false
    @Flag(help: "--verify, and print its per-tensor table (relative L2 error against the CPU, rounding estimate, tolerance).") var verifyReport = false
    @Flag(help: ArgumentHelp(D.strictHelp)) var strict = false
    @OptionGroup var balance: BalanceOptions
    @OptionGroup var distributed: DistributedOptions

    func validate() throws {
        guard epochs >= 1 else { throw VGGTLError.badFlag(flag: "--epochs", value: "\(epochs)", expected: "at least 1") }
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        guard accumulate >= 1 else { throw VGGTLError.badFlag(flag: "--accumulate", value: "\(accumulate)", expected: "at least 1 batch per optimiser step") }
        guard lr > 0, lr.isFinite else { throw VGGTLError.badFlag(flag: "--lr", value: "\(lr)", expected: "a positive number such as 1e-4") }
        guard bnRecalibrateBatches >= 1 else { throw VGGTLError.badFlag(flag: "--bn-recalibrate-batches", value: "\(bnRecalibrateBatches)", expected: "at least 1 batch") }
        if let earlyStopping, earlyStopping < 1 { throw VGGTLError.badFlag(flag: "--early-stopping", value: "\(earlyStopping)", expected: "at least 1 epoch") }
        // --momentum and --weight-decay, before any weights or data are read.
        do { _ = try optimizerSpec() } catch let e as VGGTLError { throw VGGTLError.invalidArgument(FlagWording.message(e)) }
        try checkWritable(out, flag: "--out")
    }

    func optimizerSpec() throws -> OptimizerSpec {
        try OptimizerSpec(kind: optimizer,
                          learningRate: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    }

    var outURL: URL { URL(fileURLWithPath: out) }
    var batchNormRecalibration: BatchNormRecalibration? { bnRecalibrate ? BatchNormRecalibration(maxBatches: bnRecalibrateBatches) : nil }
}
