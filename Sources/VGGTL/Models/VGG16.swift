/// VGG16 as Keras builds it: 13 3x3 convolutions in 5 blocks, each block ending in 2x2 max
/// pooling, named block1_conv1 ... block5_pool; optionally BatchNorm after every convolution
/// (block1_bn1, then block1_relu1: the names PyTorch vgg16_bn weights map to), as people train
/// it from scratch on CIFAR-10.
public enum VGG16 {
    /// Filters per block and convolutions per block.
    public static let blocks: [(filters: Int, convs: Int)] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]

    /// The trunk only (include_top=False): input (h, w, c) -> (h/32, w/32, 512).
    public static func trunk(batchNorm: Bool, inputChannels: Int = 3, batchNormMomentum: Float = 0.9,
                             on device: Device, rng: inout SeededGenerator) throws -> [Layer] {
        var layers: [Layer] = []
        var channels = inputChannels
        for (b, block) in blocks.enumerated() {
            for i in 1...block.convs {
                let name = "block\(b + 1)_conv\(i)"
                layers.append(try Conv2D(name, inChannels: channels, filters: block.filters,
                                         activation: batchNorm ? .linear : .relu, on: device, rng: &rng))
                if batchNorm {
                    layers.append(try BatchNormalization("block\(b + 1)_bn\(i)", channels: block.filters,
                                                         momentum: batchNormMomentum, on: device))
                    layers.append(ReLU("block\(b + 1)_relu\(i)"))
                }
                channels = block.filters
            }
            layers.append(Pool2D("block\(b + 1)_pool", .max))
        }
        return layers
    }

    /// Which block (1...5) a trunk layer belongs to, or nil for head layers.
    public static func block(of layerName: String) -> Int? {
        guard layerName.hasPrefix("block"), let digit = layerName.dropFirst(5).first, let b = Int(String(digit)) else { return nil }
        return b
    }
}

/// A model built from a ModelConfig: the layers plus what the config says about them.
public final class Model {
    public let config: ModelConfig
    public let network: Sequential
    public let device: Device
    /// The seed the model was built with: its initial weights and its dropout masks follow from it.
    public let seed: UInt64

    public init(_ config: ModelConfig, on device: Device, seed: UInt64) throws {
        guard config.classes >= 2 else {
            throw VGGTLError.invalidArgument("a classifier needs at least 2 classes, got \(config.classes)")
        }
        self.config = config; self.device = device; self.seed = seed
        var rng = SeededGenerator(seed: seed)
        var layers: [Layer] = []
        if config.trunk != .none {
            guard config.inputShape.count == 3, config.inputShape[0] >= 32, config.inputShape[1] >= 32 else {
                throw VGGTLError.badFlag(flag: "--size", value: config.inputShape.prefix(2).map(String.init).joined(separator: "x"),
                                         expected: "at least 32x32 (VGG16 halves the size five times)")
            }
            layers = try VGG16.trunk(batchNorm: config.trunk == .vgg16BN, inputChannels: config.inputShape[2],
                                     batchNormMomentum: config.batchNormMomentum, on: device, rng: &rng)
        }
        // Shapes flow through the layers to size the head.
        var shape = try layers.reduce([1] + config.inputShape) { try $1.outputShape($0) }
        let dropoutSeed = UInt32(truncatingIfNeeded: seed &* 0x9E37_79B9_7F4A_7C15 >> 32)
        if config.includeTop {
            layers.append(Flatten("flatten"))
            shape = [1, shape.dropFirst().reduce(1, *)]
            layers.append(try Dense("fc1", inputs: shape[1], units: 4096, activation: .relu, on: device, rng: &rng))
            layers.append(try Dense("fc2", inputs: 4096, units: 4096, activation: .relu, on: device, rng: &rng))
            layers.append(try Dense("predictions", inputs: 4096, units: config.outputUnits, on: device, rng: &rng))
        } else {
            switch config.headPooling {
            case .flatten:
                layers.append(Flatten("flatten"))
                shape = [1, shape.dropFirst().reduce(1, *)]
            case .gap:
                guard shape.count == 4 else {
                    throw VGGTLError.invalidArgument("global average pooling needs (h, w, c) features, got \(Array(shape.dropFirst()))")
                }
                layers.append(GlobalAveragePooling2D("global_average_pooling2d"))
                shape = [1, shape[3]]
            }
            var width = shape[1]
            if config.headHidden > 0 {
                layers.append(try Dense("dense", inputs: width, units: config.headHidden, activation: .relu, on: device, rng: &rng))
                width = config.headHidden
                if config.headDropout > 0 { layers.append(try Dropout("dropout", rate: config.headDropout, seed: dropoutSeed)) }
            }
            layers.append(try Dense("predictions", inputs: width, units: config.outputUnits, on: device, rng: &rng))
        }
        for case let bn as BatchNormalization in layers { bn.frozenStatistics = config.frozenBatchNormStatistics }
        network = Sequential(layers)
    }

    public var layers: [Layer] { network.layers }
    /// Layers that own weights, in order.
    public var weightedLayers: [Layer] { layers.filter { !$0.parameters.isEmpty } }
}
