import VGGTLTensors
import VGGTLNN

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
        let backbone = config.trunk.backbone
        if let backbone {
            guard config.inputShape.count == 3, config.inputShape[0] >= backbone.minimumSize, config.inputShape[1] >= backbone.minimumSize else {
                throw VGGTLError.invalidSetting(.inputSize, value: config.inputShape.prefix(2).map(String.init).joined(separator: "x"),
                                                expected: "at least \(backbone.minimumSize)x\(backbone.minimumSize) for \(backbone.title)")
            }
        }
        var b = TrunkBuilder(graph: graph, device: device, seed: SeededGenerator(seed: seed), batchNormMomentum: config.batchNormMomentum,
                             inputChannels: config.inputShape.last ?? 1)
        b.inputShape = config.inputShape
        try backbone?.buildTrunk(&b)
        trunkOutput = graph.output
        stages = b.stageOf
        var rng = b.rng
        // Shapes flow through the trunk to size the head.
        var shape = try graph.outputShape([1] + config.inputShape)
        let dropoutSeed = UInt32(truncatingIfNeeded: seed &* 0x9E37_79B9_7F4A_7C15 >> 32)
        let head: [HeadLayer]
        if config.includeTop {
            // Keras' top of the backbone (a head on saved features takes the default backbone's).
            head = (backbone ?? Backbones.default).top(units: config.outputUnits)
        } else {
            // The tutorials' head: pooling -> Dense(hidden, relu) -> Dropout -> predictions.
            var h: [HeadLayer] = [config.headPooling == .flatten ? .flatten("flatten") : .globalAveragePooling("global_average_pooling2d")]
            if config.headHidden > 0 {
                h.append(.dense("dense", units: config.headHidden, activation: .relu))
                if config.headDropout > 0 { h.append(.dropout("dropout", rate: config.headDropout)) }
            }
            head = h + [.dense("predictions", units: config.outputUnits, activation: .linear)]
        }
        for layer in head {
            switch layer {
            case .flatten(let name):
                graph.add(Flatten(name))
                shape = [1, shape.dropFirst().reduce(1, *)]
            case .globalAveragePooling(let name):
                try Self.requireFeatureMap(shape)
                graph.add(GlobalAveragePooling2D(name))
                shape = [1, shape[3]]
            case let .dense(name, units, activation):
                graph.add(try Dense(name, inputs: shape[1], units: units, activation: activation, on: device, rng: &rng))
                shape = [1, units]
            case let .dropout(name, rate):
                graph.add(try Dropout(name, rate: rate, seed: dropoutSeed))
            }
        }
        for case let bn as BatchNormalization in graph.layers { bn.frozenStatistics = config.frozenBatchNormStatistics }
        network = graph
    }

    static func requireFeatureMap(_ shape: [Int]) throws {
        guard shape.count == 4 else {
            throw VGGTLError.invalidArgument("global average pooling needs (h, w, c) features, got \(Array(shape.dropFirst()))")
        }
    }

    public var backbone: (any Backbone)? { config.trunk.backbone }
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
