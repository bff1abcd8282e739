/// Everything needed to rebuild a model: saved with every checkpoint as JSON.
public struct ModelConfig: Codable, Equatable, Sendable {
    /// The convolutional trunks (see `Backbone` for what each is). ResNet50 and InceptionV3 come
    /// in two architectures, as the weight files describe them: Keras' (ResNet v1: the stride on
    /// the first 1x1 convolution of a stage; InceptionV3 BatchNorm without gamma, average pools
    /// that exclude padding) and torchvision's (ResNet v1.5: the stride on the 3x3; Inception3
    /// BatchNorm with gamma, average pools that count padding).
    public enum Trunk: String, Codable, Sendable, CaseIterable {
        case vgg16, vgg16BN = "vgg16-bn"
        case resnet50, resnet50Torchvision = "resnet50-torchvision"
        case inceptionV3 = "inceptionv3", inceptionV3Torchvision = "inceptionv3-torchvision"
        case none
    }
    public enum Pooling: String, Codable, Sendable, CaseIterable { case flatten, gap }

    /// The convolutional trunk (`none` for a head trained on saved features).
    public var trunk: Trunk
    /// Input (height, width, channels) of the whole model: an image size, or a feature shape for `none`.
    public var inputShape: [Int]
    /// Keras' original top: fc1 (4096) -> fc2 (4096) -> predictions.
    public var includeTop: Bool
    /// The tutorials' head instead of Keras' top: pooling -> Dense(hidden, relu) -> Dropout -> predictions.
    public var headPooling: Pooling
    public var headHidden: Int
    public var headDropout: Float
    public var classes: Int
    /// Moving-average momentum of the BatchNorm layers (Keras' convention: new = m * old + (1 - m) * batch).
    /// 0.9 (PyTorch's 0.1) rather than Keras' 0.99: short runs on small data end with usable statistics.
    public var batchNormMomentum: Float = 0.9
    /// BatchNorm layers normalise with their moving statistics even while they train (fine-tuning
    /// a pretrained trunk, as Keras advises), instead of each batch's.
    public var frozenBatchNormStatistics = false

    public init(trunk: Trunk = .vgg16, inputShape: [Int] = [224, 224, 3], includeTop: Bool = false, headPooling: Pooling = .flatten,
                headHidden: Int = 256, headDropout: Float = 0.5, classes: Int) {
        self.trunk = trunk; self.inputShape = inputShape; self.includeTop = includeTop; self.headPooling = headPooling
        self.headHidden = headHidden; self.headDropout = headDropout; self.classes = classes
    }

    /// Two classes train one sigmoid unit with binary cross-entropy, as the tutorials do.
    public var outputUnits: Int { classes == 2 ? 1 : classes }
    public var loss: LossKind { classes == 2 ? .sigmoidBinaryCrossEntropy : .softmaxCrossEntropy }
}
