import Foundation
import VGGTLNN
import VGGTLData
import VGGTLIO

extension ModelConfig.Trunk {
    public static let resnet50 = Self(declaring: "resnet50")
    public static let resnet50Torchvision = Self(declaring: "resnet50-torchvision")
}

/// ResNet50 with Keras' layer names (keras.applications.ResNet50): conv1_pad, conv1_conv,
/// conv1_bn, conv1_relu, pool1_pad, pool1_pool, then 16 bottleneck blocks in stages conv2...conv5
/// (3, 4, 6, 3 blocks) named convS_blockB_{0,1,2,3}_{conv,bn}, _{1,2}_relu, _add, _out.
///
/// Two architectures, as the weight files describe them:
/// - Keras (ResNet v1): the first block of a stage strides its first 1x1 convolution (and the
///   shortcut); convolutions have biases; BatchNorm epsilon 1.001e-5.
/// - torchvision (v1.5): the stride is on the 3x3 convolution, with PyTorch's symmetric
///   padding 1; no convolution biases; BatchNorm epsilon 1e-5. The same layer list and names
///   (conv1_pad/pool1_pad stand for torchvision's conv padding 3 and max-pool padding 1: the
///   pool follows a ReLU, so zero padding equals PyTorch's ignored padding).
public struct ResNet50: Backbone {
    public let torchvision: Bool

    public static let variants: [any Backbone] = [ResNet50(torchvision: false), ResNet50(torchvision: true)]

    public var trunk: ModelConfig.Trunk { torchvision ? .resnet50Torchvision : .resnet50 }
    public var family: BackboneFamily { BackboneFamily(name: "resnet50", title: "ResNet50") }
    public var title: String { torchvision ? "ResNet50 (torchvision, v1.5: stride on the 3x3)" : "ResNet50 (Keras, v1: stride on the first 1x1)" }
    public var defaultPreprocessing: Preprocessing { torchvision ? .torch : .caffe }
    public var defaultSize: Int { 224 }
    public var minimumSize: Int { 32 }
    public var stages: [String] { (1...5).map { "conv\($0)" } }
    public var defaultUnfreeze: UnfreezeSpec { .fromStage("conv5") }

    /// Blocks and bottleneck width per stage conv2...conv5.
    public static let blocks: [(blocks: Int, filters: Int)] = [(3, 64), (4, 128), (6, 256), (3, 512)]

    public func top(units: Int) -> [HeadLayer] { Self.averagePoolTop(units: units) }

    public func buildTrunk(_ b: inout TrunkBuilder) throws {
        let bias = !torchvision
        let eps: Float = torchvision ? 1e-5 : 1.001e-5
        b.stage = "conv1"
        var x = b.layer(ZeroPadding2D("conv1_pad", 3), b.graph.output)
        x = try b.conv("conv1_conv", x, filters: 64, kernel: (7, 7), strides: (2, 2), padding: .valid, useBias: bias)
        x = try b.batchNorm("conv1_bn", x, epsilon: eps)
        x = b.relu("conv1_relu", x)
        x = b.layer(ZeroPadding2D("pool1_pad", 1), x)
        x = b.layer(Pool2D("pool1_pool", .max, poolSize: (3, 3), strides: (2, 2)), x)
        for (s, stage) in Self.blocks.enumerated() {
            b.stage = "conv\(s + 2)"
            for k in 1...stage.blocks {
                let stride = k == 1 && s > 0 ? 2 : 1
                x = try Self.block(&b, x, name: "conv\(s + 2)_block\(k)", filters: stage.filters, stride: stride,
                              convShortcut: k == 1, torchvision: torchvision, bias: bias, eps: eps)
            }
        }
    }

    /// Keras' block1: [1x1 conv -> BN] shortcut (first block of a stage), 1x1 -> 3x3 -> 1x1
    /// convolutions with BN (and ReLU after the first two), Add, ReLU.
    static func block(_ b: inout TrunkBuilder, _ x: Graph.Node, name: String, filters: Int, stride: Int,
                      convShortcut: Bool, torchvision: Bool, bias: Bool, eps: Float) throws -> Graph.Node {
        var shortcut = x
        if convShortcut {
            shortcut = try b.conv("\(name)_0_conv", x, filters: 4 * filters, kernel: (1, 1), strides: (stride, stride), padding: .valid, useBias: bias)
            shortcut = try b.batchNorm("\(name)_0_bn", shortcut, epsilon: eps)
        }
        let s1 = torchvision ? 1 : stride, s2 = torchvision ? stride : 1
        var y = try b.conv("\(name)_1_conv", x, filters: filters, kernel: (1, 1), strides: (s1, s1), padding: .valid, useBias: bias)
        y = try b.batchNorm("\(name)_1_bn", y, epsilon: eps)
        y = b.relu("\(name)_1_relu", y)
        y = try b.conv("\(name)_2_conv", y, filters: filters, kernel: (3, 3), strides: (s2, s2),
                       padding: torchvision ? .symmetric(1) : .same, useBias: bias)
        y = try b.batchNorm("\(name)_2_bn", y, epsilon: eps)
        y = b.relu("\(name)_2_relu", y)
        y = try b.conv("\(name)_3_conv", y, filters: 4 * filters, kernel: (1, 1), padding: .valid, useBias: bias)
        y = try b.batchNorm("\(name)_3_bn", y, epsilon: eps)
        let sum = b.add(Add("\(name)_add"), [shortcut, y], channels: 4 * filters)
        return b.relu("\(name)_out", sum)
    }

    // MARK: Weight files

    /// Keras publishes the v1 architecture's (keras/applications/resnet.py).
    public func imageNetFile(includeTop: Bool) -> ImageNetWeights.File? {
        guard !torchvision else { return nil }
        return ImageNetWeights.File(
            name: includeTop ? "resnet50_weights_tf_dim_ordering_tf_kernels.h5" : "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            baseURL: URL(string: "https://storage.googleapis.com/tensorflow/keras-applications/resnet/")!,
            md5: includeTop ? "2cb95161c43110f7111970584f804107" : "4d473c1dd8becc155b73f8504c6f6626")
    }

    public var torchNaming: (any TorchNaming)? { torchvision ? TorchBackbone.resnet50 : nil }
    public var torchvisionModel: String? { torchvision ? "resnet50" : nil }

    /// Keras names (conv1_conv, convS_blockB_K_conv): Keras' with convolution biases,
    /// torchvision's without.
    public func trunk(ofKerasNames names: [String]) -> ModelConfig.Trunk? {
        let layers = Set(names.map(layerName(of:)))
        guard let conv = ["conv1_conv", "conv2_block1_1_conv", "conv5_block3_3_conv"].first(where: layers.contains) else { return nil }
        return names.contains("\(conv)/bias") ? .resnet50 : .resnet50Torchvision
    }

    public func weightsPreprocessing(torchNames: Bool) -> (preprocessing: Preprocessing, because: String)? {
        if torchvision { return (.torch, "torchvision ResNet50 weights") }
        return torchNames ? nil : (.caffe, "Keras ResNet50 weights")
    }

    public func chosenByWeightsNote(torchNames: Bool) -> String? {
        torchvision ? "torchvision ResNet50 \(torchNames ? "names" : "weights"): building the v1.5 trunk (stride on the 3x3 convolution)" : nil
    }
}

extension TorchBackbone {
    /// torchvision `resnet50`: conv1/bn1 -> conv1_conv/conv1_bn; layer{L}.{B}.conv{K}/bn{K} ->
    /// conv{L+1}_block{B+1}_{K}_conv/_bn; layer{L}.0.downsample.0/.1 -> conv{L+1}_block1_0_conv/_0_bn.
    public static let resnet50 = TorchBackbone(
        trunk: .resnet50Torchvision, title: "torchvision resnet50", table: resnetTable,
        recognises: { $0.contains("conv1.weight") && $0.contains(where: { $0.hasPrefix("layer1.") }) })

    static let resnetTable: [(torch: String, keras: String)] = {
        var t = convBN(torchConv: "conv1", torchBN: "bn1", keras: "conv1_conv", "conv1_bn")
        for (l, stage) in ResNet50.blocks.enumerated() {
            for b in 0..<stage.blocks {
                let torch = "layer\(l + 1).\(b)", keras = "conv\(l + 2)_block\(b + 1)"
                for k in 1...3 { t += convBN(torchConv: "\(torch).conv\(k)", torchBN: "\(torch).bn\(k)", keras: "\(keras)_\(k)_conv", "\(keras)_\(k)_bn") }
                if b == 0 {
                    t += convBN(torchConv: "\(torch).downsample.0", torchBN: "\(torch).downsample.1", keras: "\(keras)_0_conv", "\(keras)_0_bn")
                }
            }
        }
        return t + fc
    }()
}
