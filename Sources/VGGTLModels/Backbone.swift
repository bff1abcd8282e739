import VGGTLTensors
import VGGTLNN
import VGGTLData
import VGGTLIO

/// One architecture vggtl builds, and everything known about it: its graph and Keras' top, stage
/// names, defaults, Keras names and `model.layers` order, torch names, the ImageNet files Keras
/// publishes, and how to recognise its weight files. A family (VGG16, ResNet50, InceptionV3)
/// lives in one folder under Backbones/ and declares its variants (with or without BatchNorm,
/// Keras' or torchvision's architecture); `Backbones.all` lists them, and the commands take
/// their defaults, help and checks from there.
public protocol Backbone: Sendable {
    /// The identifier `--model`, checkpoints and weight metadata carry.
    var trunk: ModelConfig.Trunk { get }
    var family: BackboneFamily { get }
    /// "ResNet50 (Keras, v1: stride on the first 1x1)".
    var title: String { get }
    /// The preprocessing its pretrained weights were trained with.
    var defaultPreprocessing: Preprocessing { get }
    /// Input side the weights were trained at, and the smallest the architecture takes.
    var defaultSize: Int { get }
    var minimumSize: Int { get }
    /// True when each command keeps its own default size (VGG16: the tutorials' 150 for
    /// fine-tuning, 32 from scratch) and converted weights record none; else `defaultSize`.
    var keepsCommandSize: Bool { get }
    /// Stage names in network order (`--unfreeze STAGE` trains that stage and everything after it).
    var stages: [String] { get }
    /// The head pooling the tutorials use with it (Flatten for VGG16, global average pooling else).
    var defaultPooling: ModelConfig.Pooling { get }
    /// What fine-tuning trains without `--unfreeze` (the tutorials' cut).
    var defaultUnfreeze: UnfreezeSpec { get }

    /// Adds the trunk from `b.graph`'s current output, with Keras' layer names, in Keras'
    /// creation order (which decides the automatic names: conv2d, conv2d_1, ...).
    func buildTrunk(_ b: inout TrunkBuilder) throws
    /// Keras' include_top=True top after the trunk, ending in `units` outputs.
    func top(units: Int) -> [HeadLayer]

    /// The file Keras Applications publishes for it; nil when there is none.
    func imageNetFile(includeTop: Bool) -> ImageNetWeights.File?
    /// Its PyTorch names; nil when no PyTorch model has this architecture.
    var torchNaming: (any TorchNaming)? { get }
    /// The torchvision model whose state dict it loads ("vgg16_bn"), for help texts.
    var torchvisionModel: String? { get }
    /// The trunk of this family that tensors with these Keras names hold; nil when they are not
    /// this family's.
    func trunk(ofKerasNames names: [String]) -> ModelConfig.Trunk?
    /// The preprocessing weights of this trunk expect when their file does not say, and why
    /// (for the log); nil when the file's naming and format decide (see `WeightsChoice`).
    func weightsPreprocessing(torchNames: Bool) -> (preprocessing: Preprocessing, because: String)?
    /// The line saying that this trunk is built because the weights hold it, when its family's
    /// name was asked for (`--model resnet50` with torchvision weights).
    func chosenByWeightsNote(torchNames: Bool) -> String?
    /// Why weights that hold `found` (nil: not recognised) cannot be loaded when this trunk is
    /// asked for by its own name; nil when they can.
    func weightsMismatch(found: ModelConfig.Trunk?, file: String) -> VGGTLError?
}

/// VGG16, ResNet50, InceptionV3: `name` is what `--model` calls the family, which lets the
/// weights choose the variant.
public struct BackboneFamily: Hashable, Sendable {
    public let name: String
    public let title: String
    public init(name: String, title: String) { self.name = name; self.title = title }
}

/// A layer of a head or a top, built by `Model` after the trunk.
public enum HeadLayer: Sendable {
    case flatten(String)
    case globalAveragePooling(String)
    case dense(String, units: Int, activation: Activation)
    case dropout(String, rate: Float)
}

extension Backbone {
    public var keepsCommandSize: Bool { false }
    public var defaultPooling: ModelConfig.Pooling { .gap }
    public func imageNetFile(includeTop: Bool) -> ImageNetWeights.File? { nil }
    public var torchNaming: (any TorchNaming)? { nil }
    public var torchvisionModel: String? { nil }
    public func weightsPreprocessing(torchNames: Bool) -> (preprocessing: Preprocessing, because: String)? { nil }
    public func chosenByWeightsNote(torchNames: Bool) -> String? { nil }

    /// Weights of another architecture of the family would not load.
    public func weightsMismatch(found: ModelConfig.Trunk?, file: String) -> VGGTLError? {
        guard let found, found != trunk, let other = found.backbone else { return nil }
        return .weightsOfAnotherModel(model: trunk.rawValue, file: file, holds: other.title, family: other.family.name)
    }

    /// Asked for by the family's name, the weights decide the variant (`--model vgg16` builds
    /// VGG16-BN for BatchNorm weights).
    public var letsWeightsChoose: Bool { trunk.rawValue == family.name }

    /// The input side a command uses without --size, given its own default.
    public func commandSize(default side: Int) -> Int { keepsCommandSize ? side : defaultSize }

    /// The input size converted weights record; nil when the weights serve any size.
    public var weightsInputSize: Int? { keepsCommandSize ? nil : defaultSize }

    /// Average pooling then `predictions`: ResNet50's and InceptionV3's top.
    public static func averagePoolTop(units: Int) -> [HeadLayer] {
        [.globalAveragePooling("avg_pool"), .dense("predictions", units: units, activation: .linear)]
    }

    /// The weighted layers with Keras' top (include_top=True, 1000 classes) in Keras'
    /// model.layers order, with our names and Keras shapes; `trunk` says which are the trunk's.
    /// The trunk is built (at the minimum size: its weights do not depend on the size); the top's
    /// shapes follow from the trunk's features at the default size (VGG16's fc1 reads 7x7x512),
    /// so a 138M-parameter top is never allocated. For `vggtl weights inspect`.
    public func weightLayout(on device: Device) throws -> [(layer: String, trunk: Bool, weights: [(name: String, shape: [Int])])] {
        let side = minimumSize
        // Global average pooling: the small head takes the trunk's features at any size.
        let model = try Model(ModelConfig(trunk: trunk, inputShape: [side, side, 3], headPooling: .gap, headHidden: 0, classes: 2), on: device, seed: 0)
        let trunkLayers = model.kerasOrderedTrunkLayers.filter { !$0.weights.isEmpty }.map { layer in
            (layer: layer.name, trunk: true, weights: layer.weights.map { (name: $0.name, shape: $0.tensor.shape) })
        }
        var shape = try model.network.outputShape([1, defaultSize, defaultSize, 3], of: model.trunkOutput)
        var top: [(layer: String, trunk: Bool, weights: [(name: String, shape: [Int])])] = []
        for layer in self.top(units: 1000) {
            switch layer {
            case .flatten: shape = [1, shape.dropFirst().reduce(1, *)]
            case .globalAveragePooling: shape = [1, shape.last!]
            case .dropout: break
            case let .dense(name, units, _):
                top.append((layer: name, trunk: false, weights: [(name: "\(name)/kernel", shape: [shape[1], units]), (name: "\(name)/bias", shape: [units])]))
                shape = [1, units]
            }
        }
        return trunkLayers + top
    }
}
