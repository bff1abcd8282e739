/// A model built from a ModelConfig: a backbone's trunk (or none, for a head on saved features)
/// and a head, as one graph, plus what the config says about its layers.
public final class Model {
    public let config: ModelConfig
    public let network: Graph
    public let device: Device
    /// The seed the model was built with: its initial weights and its dropout masks follow from it.
    public let seed: UInt64
    /// The trunk's output (the features `extract` saves); the input for a head-only model.
    public let trunkOutput: Graph.Node
    /// Stage of every trunk layer by name; head layers have none.
    private let stages: [String: String]
    private var kerasCache: [KerasLayer]?

    public init(_ config: ModelConfig, on device: Device, seed: UInt64) throws {
        guard config.classes >= 2 else {
            throw VGGTLError.invalidArgument("a classifier needs at least 2 classes, got \(config.classes)")
        }
        self.config = config; self.device = device; self.seed = seed
        let graph = Graph()
        let backbone = Backbone.of(config.trunk)
        if let backbone {
            guard config.inputShape.count == 3, config.inputShape[0] >= backbone.minimumSize, config.inputShape[1] >= backbone.minimumSize else {
                throw VGGTLError.badFlag(flag: "--size", value: config.inputShape.prefix(2).map(String.init).joined(separator: "x"),
                                         expected: "at least \(backbone.minimumSize)x\(backbone.minimumSize) for \(backbone.title)")
            }
        }
        var b = TrunkBuilder(graph: graph, device: device, seed: SeededGenerator(seed: seed), batchNormMomentum: config.batchNormMomentum,
                             inputChannels: config.inputShape.last ?? 1)
        try backbone?.build(&b)
        trunkOutput = graph.output
        stages = b.stageOf
        var rng = b.rng
        // Shapes flow through the trunk to size the head.
        var shape = try graph.outputShape([1] + config.inputShape)
        let dropoutSeed = UInt32(truncatingIfNeeded: seed &* 0x9E37_79B9_7F4A_7C15 >> 32)
        if config.includeTop && (backbone?.topIsVGG ?? true) {
            graph.add(Flatten("flatten"))
            shape = [1, shape.dropFirst().reduce(1, *)]
            graph.add(try Dense("fc1", inputs: shape[1], units: 4096, activation: .relu, on: device, rng: &rng))
            graph.add(try Dense("fc2", inputs: 4096, units: 4096, activation: .relu, on: device, rng: &rng))
            graph.add(try Dense("predictions", inputs: 4096, units: config.outputUnits, on: device, rng: &rng))
        } else if config.includeTop {
            // ResNet50 and InceptionV3: avg_pool, then predictions (softmax is in the loss).
            try Self.requireFeatureMap(shape)
            graph.add(GlobalAveragePooling2D("avg_pool"))
            graph.add(try Dense("predictions", inputs: shape[3], units: config.outputUnits, on: device, rng: &rng))
        } else {
            switch config.headPooling {
            case .flatten:
                graph.add(Flatten("flatten"))
                shape = [1, shape.dropFirst().reduce(1, *)]
            case .gap:
                try Self.requireFeatureMap(shape)
                graph.add(GlobalAveragePooling2D("global_average_pooling2d"))
                shape = [1, shape[3]]
            }
            var width = shape[1]
            if config.headHidden > 0 {
                graph.add(try Dense("dense", inputs: width, units: config.headHidden, activation: .relu, on: device, rng: &rng))
                width = config.headHidden
                if config.headDropout > 0 { graph.add(try Dropout("dropout", rate: config.headDropout, seed: dropoutSeed)) }
            }
            graph.add(try Dense("predictions", inputs: width, units: config.outputUnits, on: device, rng: &rng))
        }
        for case let bn as BatchNormalization in graph.layers { bn.frozenStatistics = config.frozenBatchNormStatistics }
        network = graph
    }

    static func requireFeatureMap(_ shape: [Int]) throws {
        guard shape.count == 4 else {
            throw VGGTLError.invalidArgument("global average pooling needs (h, w, c) features, got \(Array(shape.dropFirst()))")
        }
    }

    public var backbone: Backbone? { Backbone.of(config.trunk) }
    /// Every layer in the order built.
    public var layers: [Layer] { network.layers }
    /// Layers that own weights, in order.
    public var weightedLayers: [Layer] { layers.filter { !$0.parameters.isEmpty } }
    /// The stage (block5, conv5, mixed9, ...) of a trunk layer; nil for head layers.
    public func stage(of layer: Layer) -> String? { stages[layer.name] }
    public func isTrunk(_ layer: Layer) -> Bool { stages[layer.name] != nil }
    public var trunkLayers: [Layer] { layers.filter(isTrunk) }
    public var headLayers: [Layer] { layers.filter { !isTrunk($0) } }

    /// `layers` in Keras' `model.layers` order: what a weights file is paired with when its
    /// names are not ours (`loadWeights` pairs by order then, as Keras does).
    public var kerasOrderedLayers: [Layer] { kerasLayers.compactMap(\.layer) }
    public var kerasOrderedTrunkLayers: [Layer] { kerasOrderedLayers.filter(isTrunk) }

    /// `model.layers` as Keras lists them: the InputLayer, then every layer in Keras' order.
    public var kerasLayers: [KerasLayer] {
        if let k = kerasCache { return k }
        let k = network.kerasLayers()
        kerasCache = k
        return k
    }
}
