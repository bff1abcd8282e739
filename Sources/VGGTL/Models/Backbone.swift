/// What each convolutional trunk is and what the weights it comes with expect: the registry the
/// commands consult for defaults (input size, preprocessing, head pooling), stage names for
/// `--unfreeze`, and Keras' own top.
public struct Backbone: Sendable {
    public let trunk: ModelConfig.Trunk
    /// "ResNet50 (Keras, v1)".
    public let title: String
    /// The preprocessing its pretrained weights were trained with.
    public let defaultPreprocessing: Preprocessing
    /// Input side the weights were trained at, and the smallest the architecture takes.
    public let defaultSize: Int
    public let minimumSize: Int
    /// Stage names in network order (`--unfreeze STAGE` trains that stage and everything after it).
    public let stages: [String]
    /// The head pooling the tutorials use with it (Flatten for VGG16, global average pooling else).
    public let defaultPooling: ModelConfig.Pooling
    /// Keras' include_top=True top: VGG16's flatten-fc1-fc2-predictions, or avg_pool-predictions.
    public let topIsVGG: Bool

    public static let all: [Backbone] = [
        Backbone(trunk: .vgg16, title: "VGG16", defaultPreprocessing: .caffe, defaultSize: 224, minimumSize: 32,
                 stages: (1...5).map { "block\($0)" }, defaultPooling: .flatten, topIsVGG: true),
        Backbone(trunk: .vgg16BN, title: "VGG16 with BatchNorm", defaultPreprocessing: .torch, defaultSize: 224, minimumSize: 32,
                 stages: (1...5).map { "block\($0)" }, defaultPooling: .flatten, topIsVGG: true),
        Backbone(trunk: .resnet50, title: "ResNet50 (Keras, v1: stride on the first 1x1)", defaultPreprocessing: .caffe,
                 defaultSize: 224, minimumSize: 32, stages: (1...5).map { "conv\($0)" }, defaultPooling: .gap, topIsVGG: false),
        Backbone(trunk: .resnet50Torchvision, title: "ResNet50 (torchvision, v1.5: stride on the 3x3)", defaultPreprocessing: .torch,
                 defaultSize: 224, minimumSize: 32, stages: (1...5).map { "conv\($0)" }, defaultPooling: .gap, topIsVGG: false),
        // torchvision's pretrained inception_v3 maps its torch-normalised input back to [-1, 1]
        // (transform_input=True): the weights expect 'tf' preprocessing either way.
        Backbone(trunk: .inceptionV3, title: "InceptionV3 (Keras)", defaultPreprocessing: .tf, defaultSize: 299, minimumSize: 75,
                 stages: ["stem"] + (0...10).map { "mixed\($0)" }, defaultPooling: .gap, topIsVGG: false),
        Backbone(trunk: .inceptionV3Torchvision, title: "InceptionV3 (torchvision Inception3)", defaultPreprocessing: .tf, defaultSize: 299,
                 minimumSize: 75, stages: ["stem"] + (0...10).map { "mixed\($0)" }, defaultPooling: .gap, topIsVGG: false),
    ]

    /// The backbone of a trunk; nil for `.none` (a head on saved features).
    public static func of(_ trunk: ModelConfig.Trunk) -> Backbone? { all.first { $0.trunk == trunk } }

    /// Every stage name of every backbone (what `--unfreeze` accepts before a model is known).
    public static var allStages: Set<String> { Set(all.flatMap(\.stages)) }

    /// Builds the trunk from `b.graph`'s current output, with Keras' layer names.
    func build(_ b: inout TrunkBuilder) throws {
        switch trunk {
        case .vgg16, .vgg16BN: try VGG16.build(&b, batchNorm: trunk == .vgg16BN)
        case .resnet50, .resnet50Torchvision: try ResNet50.build(&b, torchvision: trunk == .resnet50Torchvision)
        case .inceptionV3, .inceptionV3Torchvision: try InceptionV3.build(&b, torchvision: trunk == .inceptionV3Torchvision)
        case .none: break
        }
    }
}

/// Adds a trunk's layers to a graph, recording each layer's stage and numbering unnamed layers
/// as a fresh Keras session does (conv2d, conv2d_1, ..., batch_normalization, ...).
public struct TrunkBuilder {
    public let graph: Graph
    public let device: Device
    public var rng: SeededGenerator
    public let batchNormMomentum: Float
    /// Stage of the layers being added.
    public var stage = ""
    public private(set) var stageOf: [String: String] = [:]
    private var counters: [String: Int] = [:]
    /// Channels of each node's output, for the next layer's kernel shape.
    private var channelsOf: [Graph.Node: Int] = [:]

    public init(graph: Graph, device: Device, seed: SeededGenerator, batchNormMomentum: Float, inputChannels: Int) {
        self.graph = graph; self.device = device; rng = seed; self.batchNormMomentum = batchNormMomentum
        channelsOf[graph.output] = inputChannels
    }

    /// Keras' automatic name for the next unnamed layer of a kind: "conv2d", then "conv2d_1", ...
    public mutating func autoName(_ base: String) -> String {
        let k = counters[base, default: 0]
        counters[base] = k + 1
        return k == 0 ? base : "\(base)_\(k)"
    }

    public func channels(_ node: Graph.Node) -> Int { channelsOf[node]! }

    @discardableResult
    public mutating func add(_ layer: Layer, _ inputs: [Graph.Node], channels: Int) -> Graph.Node {
        let node = graph.add(layer, inputs: inputs)
        stageOf[layer.name] = stage
        channelsOf[node] = channels
        return node
    }

    public mutating func conv(_ name: String, _ x: Graph.Node, filters: Int, kernel: (Int, Int), strides: (Int, Int) = (1, 1),
                              padding: Padding = .same, useBias: Bool) throws -> Graph.Node {
        let c = try Conv2D(name, inChannels: channels(x), filters: filters, kernelSize: kernel, strides: strides, padding: padding,
                           activation: .linear, useBias: useBias, on: device, rng: &rng)
        return add(c, [x], channels: filters)
    }

    public mutating func batchNorm(_ name: String, _ x: Graph.Node, epsilon: Float, scale: Bool = true) throws -> Graph.Node {
        let bn = try BatchNormalization(name, channels: channels(x), momentum: batchNormMomentum, epsilon: epsilon, scale: scale, on: device)
        return add(bn, [x], channels: channels(x))
    }

    public mutating func relu(_ name: String, _ x: Graph.Node) -> Graph.Node { add(ReLU(name), [x], channels: channels(x)) }

    public mutating func layer(_ layer: Layer, _ x: Graph.Node) -> Graph.Node { add(layer, [x], channels: channels(x)) }
}
