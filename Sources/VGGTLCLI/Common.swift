import ArgumentParser
import Foundation
import VGGTL

/// `DIR` (class folders), `cifar10:DIR` or `fashion-mnist:DIR` (DIR optional: Debian's package path).
enum DataSpec {
    case folder(URL)
    case cifar10(URL)
    case fashionMNIST(URL)

    init(parsing text: String, flag: String) throws {
        if text.hasPrefix("cifar10:") {
            self = .cifar10(URL(fileURLWithPath: String(text.dropFirst(8))))
        } else if text == "fashion-mnist" || text.hasPrefix("fashion-mnist:") {
            let dir = text.dropFirst("fashion-mnist".count).drop { $0 == ":" }
            self = .fashionMNIST(URL(fileURLWithPath: dir.isEmpty ? "/usr/share/datasets/fashion-mnist" : String(dir)))
        } else {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: text, isDirectory: &isDir), isDir.boolValue else {
                throw VGGTLError.badFlag(flag: flag, value: text, expected: "a folder with one subfolder per class, cifar10:DIR or fashion-mnist[:DIR]")
            }
            self = .folder(URL(fileURLWithPath: text))
        }
    }

    /// Training images and, for the built-in datasets, their test split.
    func load() throws -> (train: ImageSource, test: ImageSource?) {
        switch self {
        case .folder(let u): return (try ClassFolderSource(directory: u), nil)
        case .cifar10(let u): let s = try CIFAR10.load(directory: u); return (s.train, s.test)
        case .fashionMNIST(let u): let s = try IDX.loadFashionMNIST(directory: u); return (s.train, s.test)
        }
    }

    /// The split that evaluation uses: a folder as it is, a built-in dataset's test split.
    func evaluationSource() throws -> ImageSource {
        let s = try load()
        return s.test ?? s.train
    }
}

/// A `--data`/`--val` folder of class subfolders; the error names the flag.
func classFolders(_ path: String, flag: String) throws -> ClassFolderSource {
    guard case .folder(let url) = try DataSpec(parsing: path, flag: flag) else {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a folder with one subfolder per class")
    }
    return try ClassFolderSource(directory: url)
}

/// The defaults that differ between commands, so that `--help` shows each command's own.
protocol CommandDefaults {
    static var optimizer: String { get }
    static var learningRate: Float { get }
    /// The input size, as help shows it.
    static var size: String { get }
    /// Where the preprocessing comes from, as help shows it.
    static var preprocessing: String { get }
    static var strictHelp: String { get }
}

enum FinetuneDefaults: CommandDefaults {
    static let optimizer = "sgd", learningRate: Float = 1e-4
    static let size = "the size the weights carry, else 150x150"
    static let preprocessing = "chosen from the weights: their vggtl metadata, else torch for PyTorch files, caffe for Keras files, rescale for --weights none"
    static let strictHelp = "Stop at the first unreadable image instead of skipping it with a warning."
}

enum ExtractDefaults: CommandDefaults {
    static let optimizer = "", learningRate: Float = 0
    static let size = FinetuneDefaults.size, preprocessing = FinetuneDefaults.preprocessing, strictHelp = FinetuneDefaults.strictHelp
}

enum TrainDefaults: CommandDefaults {
    static let optimizer = "adam", learningRate: Float = 1e-3
    static let size = "32x32", preprocessing = "rescale"
    static let strictHelp = FinetuneDefaults.strictHelp
}

enum TrainTopDefaults: CommandDefaults {
    static let optimizer = "rmsprop", learningRate: Float = 1e-3
    static let size = "", preprocessing = ""
    static let strictHelp = "Stop when the features' origin is unknown (no features.json) or --val-features came from other weights, size or preprocessing (default: a warning)."
}

/// Options every training command shares; `D` gives the command's own defaults.
struct TrainingOptions<D: CommandDefaults>: ParsableArguments {
    @Option(help: "Run folder: checkpoints (last, best), history.csv, curves.svg.") var out: String
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Learning rate.") var lr: Float = D.learningRate
    @Option(help: "sgd | adam | rmsprop.") var optimizer: String = D.optimizer
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
    @Option(help: "L2 weight decay.") var weightDecay: Float = 0
    @Option(help: "constant | step:EVERY:FACTOR | cosine[:FLOOR].") var schedule = "constant"
    @Option(help: "Stop when val_loss has not improved for N epochs (needs validation data). (default: off)") var earlyStopping: Int?
    @Option(help: "Write TensorBoard scalar event files into this folder. (default: none)") var tensorboard: String?
    @Flag(help: "Continue the run in --out where it stopped.") var resume = false
    @Flag(help: "Before training, run the first batch on the chosen device and on the CPU and stop if they disagree beyond float32 rounding.") var verify = false
    @Flag(help: "--verify, and print its per-tensor table (relative L2 error against the CPU, rounding estimate, tolerance).") var verifyReport = false
    @Flag(help: ArgumentHelp(D.strictHelp)) var strict = false
    @OptionGroup var distributed: DistributedOptions

    func validate() throws {
        guard epochs >= 1 else { throw VGGTLError.badFlag(flag: "--epochs", value: "\(epochs)", expected: "at least 1") }
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        guard lr > 0, lr.isFinite else { throw VGGTLError.badFlag(flag: "--lr", value: "\(lr)", expected: "a positive number such as 1e-4") }
        let _: OptimizerSpec.Kind = try parseEnum(optimizer, flag: "--optimizer")
        if let earlyStopping, earlyStopping < 1 { throw VGGTLError.badFlag(flag: "--early-stopping", value: "\(earlyStopping)", expected: "at least 1 epoch") }
        _ = try FlagWording.worded { try LearningRateSchedule(parsing: schedule, epochs: epochs) }
        try checkWritable(out, flag: "--out")
    }

    func optimizerSpec() throws -> OptimizerSpec {
        try OptimizerSpec(kind: try parseEnum(optimizer, flag: "--optimizer"),
                          learningRate: lr, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    }

    var outURL: URL { URL(fileURLWithPath: out) }
}

/// Fails before any work when a folder cannot be created or written.
func checkWritable(_ path: String, flag: String) throws {
    let url = URL(fileURLWithPath: path)
    do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a folder that can be created and written")
    }
    guard FileManager.default.isWritableFile(atPath: url.path) else {
        throw VGGTLError.badFlag(flag: flag, value: path, expected: "a writable folder")
    }
}

/// `--model`: a backbone name (the `--bn` flag of older command lines means vgg16-bn).
func parseTrunk(_ text: String, bn: Bool = false) throws -> ModelConfig.Trunk {
    guard let backbone = Backbones.all.first(where: { $0.trunk.rawValue == text.lowercased() }) else {
        // "none" is a trunk (a head on features) but not a --model.
        throw VGGTLError.badFlag(flag: "--model", value: text, expected: (Backbones.names + (text.lowercased() == "none" ? [] : ["none"])).joined(separator: " | "))
    }
    if bn {
        // --bn names VGG16-BN: only its own family has the variant without BatchNorm.
        guard backbone.family == Backbones.of(.vgg16BN)!.family else {
            throw VGGTLError.invalidArgument("--bn is for VGG16 (--model vgg16-bn); \(backbone.trunk.rawValue) has its BatchNorm already")
        }
        return .vgg16BN
    }
    return backbone.trunk
}

/// Help texts that list the backbones, from the registry.
enum BackboneHelp {
    /// `--model`: "vgg16 | vgg16-bn | resnet50 | ...".
    static var models: String { Backbones.names.joined(separator: " | ") }
    /// `--weights`: where ImageNet weights exist, and the torchvision state dicts that load.
    static var weights: String {
        "imagenet (Keras' file for \(ImageNetWeights.trunks.map(\.rawValue).joined(separator: ", "))) | none | a .h5/.safetensors file "
            + "(Keras, or torchvision \(Backbones.all.compactMap(\.torchvisionModel).joined(separator: "/")))"
    }
    /// The trunks with torch names: "vgg16, vgg16-bn, resnet50-torchvision and inceptionv3-torchvision".
    static var torchNamed: String { Backbones.list(Backbones.all.filter { $0.torchNaming != nil }.map(\.trunk.rawValue)) }
    /// `--unfreeze`'s default per family: "block5, conv5 or mixed9".
    static var defaultUnfreeze: String { Backbones.list(Backbones.families.map(\.defaultUnfreeze.description), last: "or") }
    /// `--pooling`'s default per family: "flatten for VGG16, gap for ResNet50 and InceptionV3".
    static var defaultPooling: String {
        var order: [ModelConfig.Pooling] = [], titles: [ModelConfig.Pooling: [String]] = [:]
        for b in Backbones.families {
            if titles[b.defaultPooling] == nil { order.append(b.defaultPooling) }
            titles[b.defaultPooling, default: []].append(b.family.title)
        }
        return order.map { "\($0.rawValue) for \(Backbones.list(titles[$0]!))" }.joined(separator: ", ")
    }
}

/// `--unfreeze SPEC` or `--freeze-first N` (Keras' `model.layers[:N]`), not both.
func parseUnfreeze(_ unfreeze: String?, freezeFirst: Int?, default spec: UnfreezeSpec) throws -> UnfreezeSpec {
    if let n = freezeFirst {
        guard unfreeze == nil else { throw VGGTLError.invalidArgument("use either --unfreeze or --freeze-first, not both") }
        guard n >= 0 else { throw VGGTLError.badFlag(flag: "--freeze-first", value: "\(n)", expected: "a number of layers N >= 0") }
        return .freezeFirst(n)
    }
    return try unfreeze.map(UnfreezeSpec.init(parsing:)) ?? spec
}

/// A line on stderr, after what stdout holds so far: piped output keeps its order.
func stderr(_ s: String) { writeStandardError(s + "\n") }
