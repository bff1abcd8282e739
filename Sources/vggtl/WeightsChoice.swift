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
    /// A run folder's checkpoint (its head may be reused).
    var run: CheckpointInfo?
    private var loader: (() throws -> WeightSet)?

    /// Random weights: nothing to load.
    var isNone: Bool { loader == nil }

    func load() throws -> WeightSet? { try loader?() }

    /// `imagenet` (Keras' cache, MD5-checked, or its download), `none`/`random`, a .h5/.safetensors
    /// file, or a run folder.
    init(_ text: String) throws {
        switch text.lowercased() {
        case "none", "random":
            name = "none"; stamp = ""; batchNorm = false
            preprocessing = .rescale; preprocessingSource = "random weights"
            return
        default: break
        }
        let path = text.lowercased() == "imagenet" ? try ImageNetWeights.resolve(includeTop: false, verifyCached: true).path : text
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
                throw VGGTLError.badFlag(flag: "--weights", value: text, expected: "a run folder whose model has a VGG16 trunk")
            }
            run = info
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
        (preprocessing, preprocessingSource) = Self.preprocessing(metadata: summary.metadata, names: names, format: summary.format)
        inputSize = summary.metadata[WeightMetadata.inputSize].flatMap { try? parseSize($0) }
        loader = { try WeightFile.load(url) }
    }

    /// The file's own word (vggtl metadata), else what its names say: PyTorch weights expect
    /// torch's preprocessing, Keras weights caffe's.
    static func preprocessing(metadata: [String: String], names: [String], format: WeightFormat) -> (Preprocessing, String) {
        if let m = metadata[WeightMetadata.preprocessing], let p = Preprocessing(rawValue: m) { return (p, "the file's metadata") }
        if TorchVGG16.looksLikeTorch(names: names) { return (.torch, "PyTorch names") }
        if format == .safetensors { return (.torch, "a safetensors file without vggtl metadata") }
        return (.caffe, "Keras weights")
    }

    /// The trunk to build: the weights' own (BatchNorm or not). `--bn` on weights without
    /// BatchNorm is an error: the BatchNorm layers would have nothing to load.
    func trunk(bnFlag: Bool) throws -> ModelConfig.Trunk {
        if bnFlag, !batchNorm, !isNone {
            throw VGGTLError.invalidArgument("--bn: \(name) has no BatchNorm tensors (a plain VGG16); drop --bn, or use VGG16-BN weights")
        }
        return batchNorm || bnFlag ? .vgg16BN : .vgg16
    }

    /// One line for the log: where the weights and their preprocessing come from.
    func describe(input: InputSpec, bnFlag: Bool, preprocessFlag: Bool) -> String {
        var parts = ["weights: \(name)"]
        if batchNorm, !bnFlag { parts.append("BatchNorm tensors found: building the VGG16-BN trunk") }
        parts.append(preprocessFlag ? "preprocessing \(input.preprocessing.rawValue) (--preprocess)"
                                    : "preprocessing \(input.preprocessing.rawValue) (from \(preprocessingSource))")
        return parts.joined(separator: "; ")
    }
}
