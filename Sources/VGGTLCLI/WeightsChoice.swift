import Foundation
import VGGTL

/// What `--weights` names (imagenet, none, a weights file or a run folder), resolved before any
/// work: which trunk the tensors belong to and what inputs they expect. The tensors themselves
/// are read by `load()`, so a features cache hit costs no weights read.
struct WeightsChoice {
    /// The file's path, the run folder, or "none"; recorded in features.json.
    var name: String
    /// Changes when the weights change (the features cache key).
    var stamp: String
    /// The tensors include BatchNorm layers (VGG16-BN).
    var batchNorm: Bool
    /// The preprocessing the weights expect, and where that came from (for the one-line report).
    var preprocessing: Preprocessing
    var preprocessingSource: String
    /// The input size the weights carry (a run's, or a converted file's metadata).
    var inputSize: (Int, Int)?
    /// A run folder's checkpoint (its head may be reused), and its trunk.
    var run: CheckpointInfo?
    var runTrunk: ModelConfig.Trunk?
    /// The trunk a weights file holds (its metadata, else its names); nil when unknown.
    var fileTrunk: ModelConfig.Trunk?
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
            name = "none"; stamp = ""; batchNorm = false
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
            batchNorm = trunk == .vgg16BN
            preprocessing = info.input.preprocessing
            preprocessingSource = "the run's checkpoint \(json.lastPathComponent)"
            inputSize = (info.input.height, info.input.width)
            loader = { try Checkpoint.trunkSource(path) }
            return
        }
        let url = URL(fileURLWithPath: path)
        let summary = try WeightFile.describe(url)
        let names = summary.entries.map(\.name)
        stamp = fileStamp(path)
        batchNorm = WeightSet.hasBatchNorm(names: names) || summary.metadata[WeightMetadata.trunk] == ModelConfig.Trunk.vgg16BN.rawValue
        fileTrunk = BackboneWeights.trunk(names: names, metadata: summary.metadata)
        torchNames = TorchNames.looksLikeTorch(names: names)
        (preprocessing, preprocessingSource) = Self.preprocessing(metadata: summary.metadata, names: names, format: summary.format,
                                                                  trunk: fileTrunk.map { Backbone.of($0)?.topIsVGG == true ? requested : $0 } ?? requested)
        inputSize = summary.metadata[WeightMetadata.inputSize].flatMap { try? parseSize($0) }
        loader = { try WeightFile.load(url) }
    }

    /// The file's own word (vggtl metadata), else what the backbone and the names say: InceptionV3
    /// (Keras' or torchvision's) expects tf's preprocessing, torchvision's ResNet50 and other PyTorch
    /// weights torch's, Keras' VGG16/ResNet50 caffe's (`Backbone.defaultPreprocessing`).
    static func preprocessing(metadata: [String: String], names: [String], format: WeightFormat, trunk: ModelConfig.Trunk) -> (Preprocessing, String) {
        if let m = metadata[WeightMetadata.preprocessing], let p = Preprocessing(rawValue: m) { return (p, "the file's metadata") }
        if trunk == .inceptionV3 || trunk == .inceptionV3Torchvision { return (.tf, "InceptionV3 weights") }
        if trunk == .resnet50Torchvision { return (.torch, "torchvision ResNet50 weights") }
        if TorchNames.looksLikeTorch(names: names) { return (.torch, "PyTorch names") }
        if trunk == .resnet50 { return (.caffe, "Keras ResNet50 weights") }
        if format == .safetensors { return (.torch, "a safetensors file without vggtl metadata") }
        return (Backbone.of(trunk)?.defaultPreprocessing ?? .caffe, "Keras weights")
    }

    /// The trunk to build for `requested` (--model, --bn): a run folder's own; for VGG16 the
    /// weights' own (BatchNorm or not). VGG16-BN asked for on weights without BatchNorm is an
    /// error: the BatchNorm layers would have nothing to load.
    func trunk(_ requested: ModelConfig.Trunk) throws -> ModelConfig.Trunk {
        if let runTrunk {
            guard requested == .vgg16 || requested == runTrunk else {
                throw VGGTLError.invalidArgument("--model \(requested.rawValue): the run in \(name) has a \(runTrunk.rawValue) trunk; drop --model or use \(runTrunk.rawValue)")
            }
            return runTrunk
        }
        // ResNet50 and InceptionV3 come as two architectures: build the one the file holds.
        let family: (ModelConfig.Trunk) -> String = { t in
            switch t {
            case .vgg16, .vgg16BN: return "vgg16"
            case .resnet50, .resnet50Torchvision: return "resnet50"
            case .inceptionV3, .inceptionV3Torchvision: return "inceptionv3"
            case .none: return "none"
            }
        }
        if let fileTrunk, family(fileTrunk) != family(requested) {
            throw VGGTLError.invalidArgument("--model \(requested.rawValue): \(name) holds \(Backbone.of(fileTrunk)!.title) weights; use --model \(family(fileTrunk))")
        }
        switch requested {
        case .vgg16: return batchNorm ? .vgg16BN : .vgg16
        case .vgg16BN:
            if !batchNorm, !isNone {
                throw VGGTLError.invalidArgument("--bn (--model vgg16-bn): \(name) has no BatchNorm tensors (a plain VGG16); drop --bn, or use VGG16-BN weights")
            }
            return .vgg16BN
        case .resnet50, .inceptionV3: return fileTrunk ?? requested
        case .resnet50Torchvision, .inceptionV3Torchvision:
            if let fileTrunk, fileTrunk != requested {
                throw VGGTLError.invalidArgument("--model \(requested.rawValue): \(name) holds \(Backbone.of(fileTrunk)!.title) weights, "
                    + "another architecture; use --model \(family(fileTrunk)) (it builds the architecture the weights describe)")
            }
            return requested
        case .none: return requested
        }
    }

    /// The line that says which architecture torchvision weights build, for --model resnet50 / inceptionv3.
    func architectureNote(requested: ModelConfig.Trunk) -> String? {
        guard requested == .resnet50 || requested == .inceptionV3, let fileTrunk, fileTrunk != requested else { return nil }
        let origin = torchNames ? "names" : "weights"
        switch fileTrunk {
        case .resnet50Torchvision: return "torchvision ResNet50 \(origin): building the v1.5 trunk (stride on the 3x3 convolution)"
        case .inceptionV3Torchvision:
            return "torchvision Inception3 \(origin): building its InceptionV3 trunk (BatchNorm with gamma, average pools that count the padding)"
        default: return nil
        }
    }

    /// One line for the log: where the weights and their preprocessing come from.
    func describe(input: InputSpec, requested: ModelConfig.Trunk, preprocessFlag: Bool) -> String {
        var parts = ["weights: \(name)"]
        if batchNorm, requested == .vgg16 { parts.append("BatchNorm tensors found: building the VGG16-BN trunk") }
        if let note = architectureNote(requested: requested) { parts.append(note) }
        parts.append(preprocessFlag ? "preprocessing \(input.preprocessing.rawValue) (--preprocess)"
                                    : "preprocessing \(input.preprocessing.rawValue) (from \(preprocessingSource))")
        return parts.joined(separator: "; ")
    }
}

/// The lines a load owes the user: layers paired by order (names not ours) and torch tensors left out.
func reportLoadNotes(_ r: WeightLoadReport, file: String) {
    let name = URL(fileURLWithPath: file).lastPathComponent
    if let first = r.pairedByOrder.first {
        print("\(name): its layer names are not ours (\(first.file) for our \(first.model), ...): \(r.pairedByOrder.count) layers paired by order, as Keras' load_weights does")
    }
    if !r.leftOut.isEmpty {
        print("\(name): left out \(r.leftOut.count) tensors of the auxiliary classifier (AuxLogits.*), a training-time branch the trunk does not use")
    }
}
