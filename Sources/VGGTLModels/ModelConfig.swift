import VGGTLNN

/// Everything needed to rebuild a model: saved with every checkpoint as JSON.
public struct ModelConfig: Codable, Equatable, Sendable {
    /// Which convolutional trunk a model has: the identifier `--model`, checkpoints and weight
    /// metadata carry ("vgg16", "resnet50-torchvision", ...), looked up in `Backbones.all`; each
    /// family declares its own (`.vgg16`, `.resnet50`, ...) beside its `Backbone`. `none` is a
    /// head trained on saved features.
    public struct Trunk: RawRepresentable, Hashable, Codable, Sendable, CustomStringConvertible {
        public let rawValue: String

        /// A registered trunk or "none"; nil for any other name.
        public init?(rawValue: String) {
            guard rawValue == Trunk.none.rawValue || Backbones.all.contains(where: { $0.trunk.rawValue == rawValue }) else { return nil }
            self.rawValue = rawValue
        }

        /// For a family declaring its trunks: no registry check.
        public init(declaring rawValue: String) { self.rawValue = rawValue }

        public static let none = Trunk(declaring: "none")

        // Codable as its raw value; decoding an unknown name fails (RawRepresentable's own Codable).

        /// The backbone that builds it; nil for `none`.
        public var backbone: (any Backbone)? { Backbones.of(self) }
        public var description: String { rawValue }
    }

    public enum Pooling: String, Codable, Sendable, CaseIterable { case flatten, gap }

    /// The convolutional trunk (`none` for a head trained on saved features).
    public var trunk: Trunk
    /// Input (height, width, channels) of the whole model: an image size, or a feature shape for `none`.
    public var inputShape: [Int]
    /// Keras' include_top=True top of the backbone (`Backbone.top`: VGG16's fc1-fc2-predictions, avg_pool-predictions else).
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
    /// How the predictions layer reads: one class per image (softmax, or one sigmoid unit for two
    /// classes), or several labels per image (`--labels`: one sigmoid unit per label, binary
    /// cross-entropy). Stored as "head": "multi-label"; absent (older files): single-label.
    public enum Head: String, Codable, Sendable { case multiLabel = "multi-label" }
    private var head: Head?
    public var multiLabel: Bool {
        get { head == .multiLabel }
        set { head = newValue ? .multiLabel : nil }
    }

    public init(trunk: Trunk = .vgg16, inputShape: [Int] = [224, 224, 3], includeTop: Bool = false, headPooling: Pooling = .flatten,
                headHidden: Int = 256, headDropout: Float = 0.5, classes: Int) {
        self.trunk = trunk; self.inputShape = inputShape; self.includeTop = includeTop; self.headPooling = headPooling
        self.headHidden = headHidden; self.headDropout = headDropout; self.classes = classes
    }

    /// Two classes train one sigmoid unit with binary cross-entropy, as the tutorials do; a
    /// multi-label head has one sigmoid unit per label.
    public var outputUnits: Int { classes == 2 && !multiLabel ? 1 : classes }
    public var loss: LossKind { classes == 2 || multiLabel ? .sigmoidBinaryCrossEntropy : .softmaxCrossEntropy }
    /// Floats of a sample's target: its class index (1), or its multi-hot row (`classes`).
    public var targetWidth: Int { multiLabel ? classes : 1 }
    /// The shape of a batch's targets as the loss takes them.
    public func targetShape(rows: Int) -> [Int] { loss == .softmaxCrossEntropy ? [rows] : [rows, outputUnits] }
}
