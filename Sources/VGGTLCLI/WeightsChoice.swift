import Foundation
import VGGTLTensors
import VGGTLBackends
import VGGTLData
import VGGTLIO
import VGGTLModels
import VGGTLTrain

/// What `--weights` names (imagenet, none, a weights file or a run folder), resolved before any
/// work: which trunk the tensors belong to and what inputs they expect. The tensors themselves
/// are read by `load()`, so a features cache hit costs no weights read.
struct WeightsChoice {
    /// The file's path, the run folder, or "none"; recorded in features.json.
    var name: String
    /// Changes when the weights change (the features cache key).
    var stamp: String
    /// The preprocessing the weights expect, and where that came from (for the one-line report).
    var preprocessing: Preprocessing
    var preprocessingSource: String
    /// The input size the weights carry (a run's, or a converted file's metadata).
    var inputSize: (Int, Int)?
    /// A run folder's checkpoint (its head may be reused), and its trunk.
    var run: CheckpointInfo?
    var runTrunk: ModelConfig.Trunk?
    /// The trunk a weights file holds (its metadata, else its names, as the backbones recognise
    /// them); nil when unknown.
    var fileTrunk: ModelConfig.Trunk?
    /// The trunk the weights hold: the run's or the file's.
    var weightsTrunk: ModelConfig.Trunk? { runTrunk ?? fileTrunk }
    /// The file has PyTorch names.
    var torchNames = false
    private var loader: (() throws -> WeightSet)?

    /// Random weights: nothing to load.
    var isNone: Bool { loader == nil }

    func load() throws -> WeightSet? { try loader?() }

    /// `imagenet` (Keras' cache, MD5-checked, or its download), `none`/`random`, a .h5/.safetensors
    /// file, or a run folder; `trunk`: the backbone asked for (--model).
    init(_ text: String, trunk requested: ModelConfig.Trunk = .vgg16) throws {
        switch text.lowercased() {
        case "none", "random":
            name = "none"; stamp = ""
            preprocessing = .rescale; preprocessingSource = "random weights"
            return
        default: break
        }
        // Keras' notop file of the trunk asked for (VGG16, ResNet50, InceptionV3).
        let path = text.lowercased() == "imagenet" ? try ImageNetWeights.resolve(includeTop: false, trunk: requested, kerasHome: RunContext.current.knobs.settings.kerasHome,
                                                                                        verifyCached: true).path : text
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw VGGTLError.badFlag(flag: "--weights", value: text, expected: "imagenet, none, an existing .h5/.safetensors file or a run folder")
        }
        name = path
        if isDir.boolValue {
            let json = try Checkpoint.preferred(in: URL(fileURLWithPath: path))
            let info = try Checkpoint.load(json)
            let trunk = info.model.trunk == .none ? info.featureTrunk?.trunk ?? .none : info.model.trunk
            guard trunk != .none else {
                throw VGGTLError.badFlag(flag: "--weights", value: text, expected: "a run folder whose model has a trunk (vgg16, resnet50, inceptionv3, ...)")
            }
            run = info
            runTrunk = trunk
            stamp = fileStamp(json.path)
            preprocessing = info.input.preprocessing
            preprocessingSource = "the run's checkpoint \(json.lastPathComponent)"
            inputSize = (info.input.height, info.input.width)
            loader = { try Checkpoint.trunkSource(path, device: { try DeviceChoice.cpu.open() }) }
            return
        }
        let url = URL(fileURLWithPath: path)
        let summary = try WeightFile.describe(url)
        let names = summary.entries.map(\.name)
        stamp = fileStamp(path)
        fileTrunk = Backbones.trunk(names: names, metadata: summary.metadata)
        torchNames = TorchNames.looksLikeTorch(names: names)
        (preprocessing, preprocessingSource) = Self.preprocessing(metadata: summary.metadata, torchNames: torchNames, format: summary.format,
                                                                  trunks: [fileTrunk, requested].compactMap { $0 })
        inputSize = summary.metadata[WeightMetadata.inputSize].flatMap { try? parseSize($0) }
        loader = { try WeightFile.load(url) }
    }

    /// The file's own word (vggtl metadata), else what the backbone says (the file's, else the
    /// one asked for: InceptionV3's tf, torchvision ResNet50's torch, Keras ResNet50's caffe), else
    /// the names and format: PyTorch names and safetensors files torch's, Keras weights the
    /// backbone's own (caffe for VGG16).
    static func preprocessing(metadata: [String: String], torchNames: Bool, format: WeightFormat, trunks: [ModelConfig.Trunk]) -> (Preprocessing, String) {
        if let m = metadata[WeightMetadata.preprocessing], let p = Preprocessing(rawValue: m) { return (p, "the file's metadata") }
        for t in trunks {
            if let p = t.backbone?.weightsPreprocessing(torchNames: torchNames) { return (p.preprocessing, p.because) }
        }
        if torchNames { return (.torch, "PyTorch names") }
        if format == .safetensors { return (.torch, "a safetensors file without vggtl metadata") }
        return (trunks.last?.backbone?.defaultPreprocessing ?? .caffe, "Keras weights")
    }

    /// The trunk to build for `requested` (--model, --bn): a run folder's own; asked for by the
    /// family's name, the one the weights hold (VGG16 with or without BatchNorm, Keras' or
    /// torchvision's ResNet50 and InceptionV3); asked for by its own name, the weights must fit it
    /// (VGG16-BN on weights without BatchNorm would leave its BatchNorm layers nothing to load).
    func trunk(_ requested: ModelConfig.Trunk) throws -> ModelConfig.Trunk {
        if let runTrunk {
            guard requested == .vgg16 || requested == runTrunk else {
                throw VGGTLError.invalidArgument("--model \(requested.rawValue): the run in \(name) has a \(runTrunk.rawValue) trunk; drop --model or use \(runTrunk.rawValue)")
            }
            return runTrunk
        }
        guard let wanted = requested.backbone else { return requested }
        if let found = fileTrunk?.backbone, found.family != wanted.family {
            throw VGGTLError.invalidArgument("--model \(requested.rawValue): \(name) holds \(found.title) weights; use --model \(found.family.name)")
        }
        if wanted.letsWeightsChoose { return fileTrunk ?? requested }
        if !isNone, let mismatch = wanted.weightsMismatch(found: fileTrunk, file: name) { throw mismatch }
        return requested
    }

    /// One line for the log: where the weights and their preprocessing come from.
    func describe(input: InputSpec, requested: ModelConfig.Trunk, preprocessFlag: Bool) -> String {
        var parts = ["weights: \(name)"]
        // Asked for by the family's name, the weights chose another variant of it.
        if let chosen = weightsTrunk?.backbone, chosen.trunk != requested, let wanted = requested.backbone, wanted.letsWeightsChoose,
           chosen.family == wanted.family, let note = chosen.chosenByWeightsNote(torchNames: torchNames) {
            parts.append(note)
        }
        parts.append(preprocessFlag ? "preprocessing \(input.preprocessing.rawValue) (--preprocess)"
                                    : "preprocessing \(input.preprocessing.rawValue) (from \(preprocessingSource))")
        return parts.joined(separator: "; ")
    }
}
