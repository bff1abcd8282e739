import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLData
import VGGTLIO

extension ModelConfig.Trunk {
    public static let mobileNetV2 = Self(declaring: "mobilenetv2")
    public static let mobileNetV2Torchvision = Self(declaring: "mobilenetv2-torchvision")
}

/// MobileNetV2 (alpha 1.0) as keras.applications.MobileNetV2 builds it, with its layer names and
/// `model.layers` order (154 layers with the InputLayer, 2,257,984 parameters without the top):
///
/// - the stem: Conv1 (3x3, stride 2, 'same', no bias), bn_Conv1, Conv1_relu (ReLU(6.0));
/// - 17 inverted residual blocks (`_inverted_res_block`): block 0 is `expanded_conv_` and has no
///   expansion; blocks 1...16 start with block_N_expand (1x1 to 6x the input channels),
///   block_N_expand_BN, block_N_expand_relu. A stride-2 block then pads with block_N_pad
///   (Keras' `correct_pad`: one row and column at the bottom and right for an even size, one
///   on every side for an odd one) and runs its depthwise 3x3 'valid'; a stride-1 block runs it
///   'same'. Then block_N_depthwise, _depthwise_BN, _depthwise_relu, block_N_project (1x1,
///   linear), _project_BN, and block_N_add when the block keeps its channels and size;
/// - Conv_1 (1x1 to 1280, no bias), Conv_1_bn, out_relu.
///
/// BatchNorm epsilon 1e-3 (Keras); the moving-average momentum is the model config's, as for
/// every backbone (Keras' own is 0.999).
///
/// The torchvision variant (`torchvision.models.mobilenet_v2`) is the same layer list with
/// PyTorch's padding: symmetric 1 for every 3x3 convolution (the stem's and the strided
/// depthwise ones, whose block_N_pad then pads one on every side), BatchNorm epsilon 1e-5.
///
/// Stages for `--unfreeze`: stem, block_0 ... block_16, conv_1 (Conv_1, Conv_1_bn, out_relu).
/// Fine-tuning trains what TensorFlow's transfer-learning tutorial does by default:
/// `fine_tune_at = 100`, Keras layers 100 on (the first 100 of `model.layers`, the InputLayer
/// included, stay frozen: block_11's expansion relu onwards trains).
public struct MobileNetV2: Backbone {
    public let torchvision: Bool

    public static let variants: [any Backbone] = [MobileNetV2(torchvision: false), MobileNetV2(torchvision: true)]

    public var trunk: ModelConfig.Trunk { torchvision ? .mobileNetV2Torchvision : .mobileNetV2 }
    public var family: BackboneFamily { BackboneFamily(name: "mobilenetv2", title: "MobileNetV2") }
    public var title: String {
        torchvision ? "MobileNetV2 (torchvision: symmetric padding, BatchNorm eps 1e-5)" : "MobileNetV2 (Keras, alpha 1.0)"
    }
    public var defaultPreprocessing: Preprocessing { torchvision ? .torch : .tf }
    public var defaultSize: Int { 224 }
    public var minimumSize: Int { 32 }
    public var stages: [String] { ["stem"] + (0...16).map { "block_\($0)" } + ["conv_1"] }
    public var defaultUnfreeze: UnfreezeSpec { .freezeFirst(100) }

    /// The inverted residual blocks 0...16: (expansion, output channels, stride).
    public static let blocks: [(expansion: Int, filters: Int, stride: Int)] = {
        // (expansion t, channels c, repeats n, first stride s), the paper's table 2.
        let settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        return settings.flatMap { t, c, n, s in (0..<n).map { (expansion: t, filters: c, stride: $0 == 0 ? s : 1) } }
    }()
    public static let firstFilters = 32, lastFilters = 1280

    /// Keras' `_make_divisible(v, 8)`: the nearest multiple of 8, never below 90% of v.
    static func makeDivisible(_ v: Double, _ divisor: Int = 8) -> Int {
        var n = max(divisor, Int(v + Double(divisor) / 2) / divisor * divisor)
        if Double(n) < 0.9 * v { n += divisor }
        return n
    }

    public func top(units: Int) -> [HeadLayer] {
        // Keras: GlobalAveragePooling2D() unnamed, then Dense(classes, name="predictions");
        // torchvision's classifier: Dropout(0.2), Linear (classifier.1).
        [.globalAveragePooling("global_average_pooling2d")] + (torchvision ? [.dropout("dropout", rate: 0.2)] : [])
            + [.dense("predictions", units: units, activation: .linear)]
    }

    var epsilon: Float { torchvision ? 1e-5 : 1e-3 }

    public func buildTrunk(_ b: inout TrunkBuilder) throws {
        b.stage = "stem"
        var x = try b.conv("Conv1", b.graph.output, filters: Self.makeDivisible(Double(Self.firstFilters)), kernel: (3, 3), strides: (2, 2),
                           padding: torchvision ? .symmetric(1) : .same, useBias: false)
        x = try b.batchNorm("bn_Conv1", x, epsilon: epsilon)
        x = b.relu6("Conv1_relu", x)
        for (id, block) in Self.blocks.enumerated() {
            b.stage = "block_\(id)"
            x = try invertedResidual(&b, x, id: id, expansion: block.expansion, filters: Self.makeDivisible(Double(block.filters)), stride: block.stride)
        }
        b.stage = "conv_1"
        x = try b.conv("Conv_1", x, filters: Self.lastFilters, kernel: (1, 1), padding: .valid, useBias: false)
        x = try b.batchNorm("Conv_1_bn", x, epsilon: epsilon)
        _ = b.relu6("out_relu", x)
    }

    /// Keras' `_inverted_res_block` (its 1x1 convolutions say padding 'same', Conv_1 'valid':
    /// the same computation, kept as Keras' configs have it).
    func invertedResidual(_ b: inout TrunkBuilder, _ input: Graph.Node, id: Int, expansion: Int, filters: Int, stride: Int) throws -> Graph.Node {
        let inChannels = b.channels(input)
        let prefix = id == 0 ? "expanded_conv_" : "block_\(id)_"
        var x = input
        if id > 0 {
            x = try b.conv(prefix + "expand", x, filters: expansion * inChannels, kernel: (1, 1), padding: .same, useBias: false)
            x = try b.batchNorm(prefix + "expand_BN", x, epsilon: epsilon)
            x = b.relu6(prefix + "expand_relu", x)
        }
        if stride == 2 {
            x = b.layer(try pad(prefix + "pad", x, b), x)
        }
        x = try b.depthwise(prefix + "depthwise", x, strides: (stride, stride), padding: stride == 1 ? (torchvision ? .symmetric(1) : .same) : .valid)
        x = try b.batchNorm(prefix + "depthwise_BN", x, epsilon: epsilon)
        x = b.relu6(prefix + "depthwise_relu", x)
        x = try b.conv(prefix + "project", x, filters: filters, kernel: (1, 1), padding: .same, useBias: false)
        x = try b.batchNorm(prefix + "project_BN", x, epsilon: epsilon)
        if inChannels == filters && stride == 1 {
            return b.add(Add(prefix + "add"), [input, x], channels: filters)
        }
        return x
    }

    /// The padding before a strided 3x3 depthwise convolution. Keras' `correct_pad(x, 3)`:
    /// ((1 - h % 2, 1), (1 - w % 2, 1)) for a known size, ((0, 1), (0, 1)) for an unknown one;
    /// torchvision's padding=1: one on every side.
    func pad(_ name: String, _ x: Graph.Node, _ b: TrunkBuilder) throws -> ZeroPadding2D {
        if torchvision { return ZeroPadding2D(name, 1) }
        let shape = try b.shape(of: x)
        let adjust = shape.map { (1 - $0[1] % 2, 1 - $0[2] % 2) } ?? (1, 1)
        return ZeroPadding2D(name, top: 1 - adjust.0, bottom: 1, left: 1 - adjust.1, right: 1)
    }

    // MARK: Weight files

    /// The files Keras publishes for alpha 1.0 at 224 (keras/applications/mobilenet_v2.py, under
    /// https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/). Keras checks
    /// no hash for them and we have none recorded, so `--weights imagenet` does not fetch them
    /// yet (`imageNetFile` is nil); a downloaded file loads with `--weights FILE`.
    public static func kerasFileName(includeTop: Bool) -> String {
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224\(includeTop ? "" : "_no_top").h5"
    }

    /// Keras names (Conv1, expanded_conv_depthwise, block_N_...). Both variants have the same
    /// names and no biases: without vggtl's metadata, Keras names are Keras' architecture.
    public func trunk(ofKerasNames names: [String]) -> ModelConfig.Trunk? {
        let layers = Set(names.map(layerName(of:)))
        guard layers.contains("expanded_conv_depthwise") || layers.contains("block_16_project") || layers.contains("Conv_1") && layers.contains("bn_Conv1")
        else { return nil }
        return .mobileNetV2
    }

    public var torchNaming: (any TorchNaming)? { torchvision ? TorchBackbone.mobileNetV2 : nil }
    public var torchvisionModel: String? { torchvision ? "mobilenet_v2" : nil }

    public func weightsPreprocessing(torchNames: Bool) -> (preprocessing: Preprocessing, because: String)? {
        if torchvision { return (.torch, "torchvision MobileNetV2 weights") }
        return torchNames ? nil : (.tf, "Keras MobileNetV2 weights")
    }

    public func chosenByWeightsNote(torchNames: Bool) -> String? {
        torchvision ? "torchvision MobileNetV2 \(torchNames ? "names" : "weights"): building the torchvision variant (symmetric padding, BatchNorm eps 1e-5)" : nil
    }
}

extension TorchBackbone {
    /// torchvision `mobilenet_v2`: features.0.{0,1} -> Conv1/bn_Conv1; features.1.conv.{0.0,0.1,1,2}
    /// -> expanded_conv_{depthwise,depthwise_BN,project,project_BN}; features.{N+1}.conv.{0.0,0.1,
    /// 1.0,1.1,2,3} -> block_N_{expand,expand_BN,depthwise,depthwise_BN,project,project_BN};
    /// features.18.{0,1} -> Conv_1/Conv_1_bn; classifier.1 (after a Dropout) -> predictions.
    public static let mobileNetV2 = TorchBackbone(
        trunk: .mobileNetV2Torchvision, title: "torchvision mobilenet_v2", table: mobileNetV2Table,
        recognises: { $0.contains("features.0.0.weight") && $0.contains("features.1.conv.0.0.weight") && $0.contains("features.18.0.weight") })

    static let mobileNetV2Table: [(torch: String, keras: String)] = {
        var t = convBN(torchConv: "features.0.0", torchBN: "features.0.1", keras: "Conv1", "bn_Conv1")
        func depthwiseBN(_ conv: String, _ bn: String, _ keras: String) -> [(torch: String, keras: String)] {
            [(conv + ".weight", keras + "/depthwise_kernel")] + bnFields.map { (bn + "." + $0.0, keras + "_BN/" + $0.1) }
        }
        for id in MobileNetV2.blocks.indices {
            let f = "features.\(id + 1).conv"
            if id == 0 {
                t += depthwiseBN("\(f).0.0", "\(f).0.1", "expanded_conv_depthwise")
                t += convBN(torchConv: "\(f).1", torchBN: "\(f).2", keras: "expanded_conv_project", "expanded_conv_project_BN")
            } else {
                let k = "block_\(id)_"
                t += convBN(torchConv: "\(f).0.0", torchBN: "\(f).0.1", keras: k + "expand", k + "expand_BN")
                t += depthwiseBN("\(f).1.0", "\(f).1.1", k + "depthwise")
                t += convBN(torchConv: "\(f).2", torchBN: "\(f).3", keras: k + "project", k + "project_BN")
            }
        }
        t += convBN(torchConv: "features.18.0", torchBN: "features.18.1", keras: "Conv_1", "Conv_1_bn")
        return t + [("classifier.1.weight", "predictions/kernel"), ("classifier.1.bias", "predictions/bias")]
    }()
}

extension TrunkBuilder {
    /// Keras' ReLU(6.0).
    mutating func relu6(_ name: String, _ x: Graph.Node) -> Graph.Node { layer(PointwiseActivation(name, .relu6), x) }

    /// A depthwise convolution (depth multiplier 1) without bias, as MobileNetV2 has them.
    mutating func depthwise(_ name: String, _ x: Graph.Node, kernel: (Int, Int) = (3, 3), strides: (Int, Int), padding: Padding,
                            useBias: Bool = false) throws -> Graph.Node {
        let d = try DepthwiseConv2D(name, channels: channels(x), kernelSize: kernel, strides: strides, padding: padding, useBias: useBias,
                                    on: device, rng: &rng)
        return layer(d, x)
    }
}
