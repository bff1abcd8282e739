import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLData
import VGGTLIO

extension ModelConfig.Trunk {
    public static let vgg16 = Self(declaring: "vgg16")
    public static let vgg16BN = Self(declaring: "vgg16-bn")
}

/// VGG16 as Keras builds it: 13 3x3 convolutions in 5 blocks, each block ending in 2x2 max
/// pooling, named block1_conv1 ... block5_pool; optionally BatchNorm after every convolution
/// (block1_bn1, then block1_relu1: the names PyTorch vgg16_bn weights map to), as people train
/// it from scratch on CIFAR-10. A chain: each block is a stage (block1 ... block5). Keras' top
/// is flatten, fc1 (4096), fc2 (4096), predictions.
public struct VGG16: Backbone {
    public let batchNorm: Bool

    public static let variants: [any Backbone] = [VGG16(batchNorm: false), VGG16(batchNorm: true)]

    public var trunk: ModelConfig.Trunk { batchNorm ? .vgg16BN : .vgg16 }
    public var family: BackboneFamily { BackboneFamily(name: "vgg16", title: "VGG16") }
    public var title: String { batchNorm ? "VGG16 with BatchNorm" : "VGG16" }
    /// Keras' file expects caffe's; VGG16-BN weights come from torchvision.
    public var defaultPreprocessing: Preprocessing { batchNorm ? .torch : .caffe }
    public var defaultSize: Int { 224 }
    public var minimumSize: Int { 32 }
    public var keepsCommandSize: Bool { true }
    public var stages: [String] { (1...5).map { "block\($0)" } }
    public var defaultPooling: ModelConfig.Pooling { .flatten }
    public var defaultUnfreeze: UnfreezeSpec { .fromBlock(5) }

    /// Filters per block and convolutions per block.
    public static let blocks: [(filters: Int, convs: Int)] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]

    /// The trunk's layers in order (include_top=False): input (h, w, c) -> (h/32, w/32, 512).
    public static func trunk(batchNorm: Bool, inputChannels: Int = 3, batchNormMomentum: Float = 0.9,
                             on device: Device, rng: inout SeededGenerator) throws -> [Layer] {
        let g = Graph()
        var b = TrunkBuilder(graph: g, device: device, seed: rng, batchNormMomentum: batchNormMomentum, inputChannels: inputChannels)
        try VGG16(batchNorm: batchNorm).buildTrunk(&b)
        rng = b.rng
        return g.layers
    }

    public func buildTrunk(_ b: inout TrunkBuilder) throws {
        var x = b.graph.output
        for (k, block) in Self.blocks.enumerated() {
            b.stage = "block\(k + 1)"
            for i in 1...block.convs {
                let conv = try Conv2D("block\(k + 1)_conv\(i)", inChannels: b.channels(x), filters: block.filters,
                                      activation: batchNorm ? .linear : .relu, on: b.device, rng: &b.rng)
                x = b.add(conv, [x], channels: block.filters)
                if batchNorm {
                    let bn = try BatchNormalization("block\(k + 1)_bn\(i)", channels: block.filters, momentum: b.batchNormMomentum, on: b.device)
                    x = b.add(bn, [x], channels: block.filters)
                    x = b.relu("block\(k + 1)_relu\(i)", x)
                }
            }
            x = b.layer(Pool2D("block\(k + 1)_pool", .max), x)
        }
    }

    public func top(units: Int) -> [HeadLayer] {
        [.flatten("flatten"), .dense("fc1", units: 4096, activation: .relu), .dense("fc2", units: 4096, activation: .relu),
         .dense("predictions", units: units, activation: .linear)]
    }

    /// Which block (1...5) a trunk layer belongs to, or nil for head layers.
    public static func block(of layerName: String) -> Int? {
        guard layerName.hasPrefix("block"), let digit = layerName.dropFirst(5).first, let b = Int(String(digit)) else { return nil }
        return b
    }

    // MARK: Weight files

    /// Keras publishes the plain VGG16's (keras/applications/vgg16.py).
    public func imageNetFile(includeTop: Bool) -> ImageNetWeights.File? {
        guard !batchNorm else { return nil }
        return ImageNetWeights.File(
            name: includeTop ? "vgg16_weights_tf_dim_ordering_tf_kernels.h5" : "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            baseURL: URL(string: "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/")!,
            md5: includeTop ? "64373286793e3c8b2b4e3219cbf3544b" : "6d6bbae143d832006294945121d1f1fc")
    }

    public var torchNaming: (any TorchNaming)? { TorchVGG16() }
    public var torchvisionModel: String? { batchNorm ? "vgg16_bn" : "vgg16" }

    /// Keras names: block1_conv1, and BatchNorm layers (blockB_bnI) for VGG16-BN (a file of
    /// later blocks alone still says BatchNorm).
    public func trunk(ofKerasNames names: [String]) -> ModelConfig.Trunk? {
        let bn = Self.hasBatchNorm(names: names)
        guard bn || names.contains(where: { layerName(of: $0) == "block1_conv1" }) else { return nil }
        return bn ? .vgg16BN : .vgg16
    }

    /// True when the names hold VGG BatchNorm layers: Keras blockB_bnI or torchvision vgg16_bn's
    /// features.N.running_mean.
    public static func hasBatchNorm(names: [String]) -> Bool {
        names.contains { n in
            if parseBlockLayer(layerName(of: n), kind: "bn") != nil { return true }
            let s = TorchVGG16.stripPrefix(n)
            return s.hasPrefix("features.") && s.hasSuffix(".running_mean")
        }
    }

    /// (B, I) for "blockB_<kind>I".
    static func parseBlockLayer(_ name: String, kind: String) -> (Int, Int)? {
        guard name.hasPrefix("block"), let u = name.firstIndex(of: "_") else { return nil }
        let rest = name[name.index(after: u)...]
        guard rest.hasPrefix(kind), let b = Int(name[name.index(name.startIndex, offsetBy: 5)..<u]),
              let c = Int(rest.dropFirst(kind.count)) else { return nil }
        return (b, c)
    }

    public func chosenByWeightsNote(torchNames: Bool) -> String? {
        batchNorm ? "BatchNorm tensors found: building the VGG16-BN trunk" : nil
    }

    /// VGG16-BN's BatchNorm layers need the weights' BatchNorm tensors.
    public func weightsMismatch(found: ModelConfig.Trunk?, file: String) -> VGGTLError? {
        guard batchNorm, found != trunk else { return nil }
        return .weightsWithoutBatchNorm(file: file)
    }
}
