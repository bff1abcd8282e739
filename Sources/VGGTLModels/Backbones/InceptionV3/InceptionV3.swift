import Foundation
import VGGTLData
import VGGTLIO
import VGGTLNN
import VGGTLTensors

extension ModelConfig.Trunk {
    public static let inceptionV3 = Self(declaring: "inceptionv3")
    public static let inceptionV3Torchvision = Self(declaring: "inceptionv3-torchvision")
}

/// InceptionV3 as keras.applications.InceptionV3 builds it, layer for layer and in its creation
/// order, so that the automatic names are a fresh Keras session's: conv2d, conv2d_1, ...,
/// conv2d_93, batch_normalization..., activation..., max_pooling2d, average_pooling2d...,
/// concatenate, concatenate_1, and the named blocks mixed0 ... mixed10 (with mixed9_0, mixed9_1).
/// (The official weight file numbers its layers from conv2d_1: match it by order, not by name.)
///
/// Every convolution is Keras' conv2d_bn: Conv2D without bias, BatchNormalization, ReLU.
/// Two architectures, as the weight files describe them:
/// - Keras: BatchNorm without gamma (scale=False), epsilon 1e-3; 3x3 stride-1 'same' average
///   pools divide by the in-bounds pixels.
/// - torchvision (Inception3): BatchNorm with gamma, epsilon 1e-3; its average pools count the
///   padding (count_include_pad=True). Same branches in the same order, same names here.
public struct InceptionV3: Backbone {
    public let torchvision: Bool

    public static let variants: [any Backbone] = [InceptionV3(torchvision: false), InceptionV3(torchvision: true)]

    public var trunk: ModelConfig.Trunk { torchvision ? .inceptionV3Torchvision : .inceptionV3 }
    public var family: BackboneFamily { BackboneFamily(name: "inceptionv3", title: "InceptionV3") }
    public var title: String { torchvision ? "InceptionV3 (torchvision Inception3)" : "InceptionV3 (Keras)" }
    /// torchvision's pretrained inception_v3 maps its torch-normalised input back to [-1, 1]
    /// (transform_input=True): the weights expect 'tf' preprocessing either way.
    public var defaultPreprocessing: Preprocessing { .tf }
    public var defaultSize: Int { 299 }
    public var minimumSize: Int { 75 }
    public var stages: [String] { ["stem"] + (0...10).map { "mixed\($0)" } }
    public var defaultUnfreeze: UnfreezeSpec { .fromStage("mixed9") }

    public func buildTrunk(_ b: inout TrunkBuilder) throws {
        var i = Inception(b: b, torchvision: torchvision)
        try i.build()
        b = i.b
    }

    public func top(units: Int) -> [HeadLayer] { Self.averagePoolTop(units: units) }

    // MARK: Weight files

    /// Keras publishes its own architecture's (keras/applications/inception_v3.py).
    public func imageNetFile(includeTop: Bool) -> ImageNetWeights.File? {
        guard !torchvision else { return nil }
        return ImageNetWeights.File(
            name: includeTop ? "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" : "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
            baseURL: URL(string: "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/")!,
            md5: includeTop ? "9a0d58056eeedaa3f26cb7ebd46da564" : "bcbd6486424b2319ff4ef7d526e38f63")
    }

    public var torchNaming: (any TorchNaming)? { torchvision ? TorchBackbone.inceptionV3 : nil }
    public var torchvisionModel: String? { torchvision ? "inception_v3" : nil }

    /// Keras names conv2d_N with batch_normalization_N: Keras' BatchNorm has no gamma,
    /// torchvision's has.
    public func trunk(ofKerasNames names: [String]) -> ModelConfig.Trunk? {
        let all = Set(names)
        let bns = all.filter { $0.hasPrefix("batch_normalization") && $0.hasSuffix("/beta") }
        guard names.contains(where: { layerName(of: $0).hasPrefix("conv2d") }), !bns.isEmpty else { return nil }
        return bns.contains { all.contains(layerName(of: $0) + "/gamma") } ? .inceptionV3Torchvision : .inceptionV3
    }

    public func weightsPreprocessing(torchNames: Bool) -> (preprocessing: Preprocessing, because: String)? { (.tf, "InceptionV3 weights") }

    public func chosenByWeightsNote(torchNames: Bool) -> String? {
        torchvision ? "torchvision Inception3 \(torchNames ? "names" : "weights"): building its InceptionV3 trunk (BatchNorm with gamma, average pools that count the padding)" : nil
    }
}

extension TorchBackbone {
    /// torchvision `inception_v3`: the k-th BasicConv2d in network order (Conv2d_1a_3x3, ...,
    /// Mixed_5b.branch1x1, ..., Mixed_7c.branch_pool; the order Keras creates its conv2d_bn blocks
    /// in) -> conv2d_k / batch_normalization_k (a fresh Keras session's names: conv2d, conv2d_1,
    /// ...). The auxiliary classifier (`AuxLogits.*`, a training-time branch Keras' InceptionV3
    /// does not have) is left out.
    public static let inceptionV3 = TorchBackbone(
        trunk: .inceptionV3Torchvision, title: "torchvision inception_v3", table: inceptionTable,
        leftOut: (["AuxLogits."], "of the auxiliary classifier (AuxLogits.*), a training-time branch the trunk does not use"),
        recognises: { $0.contains(where: { $0.hasPrefix("Conv2d_1a_3x3.") || $0.hasPrefix("Mixed_5b.") }) })

    static let inceptionTable: [(torch: String, keras: String)] = {
        var t: [(torch: String, keras: String)] = []
        for (k, module) in inceptionModules.enumerated() {
            let suffix = k == 0 ? "" : "_\(k)"
            t += convBN(torchConv: "\(module).conv", torchBN: "\(module).bn", keras: "conv2d\(suffix)", "batch_normalization\(suffix)")
        }
        return t + fc
    }()

    /// Inception3's BasicConv2d modules in network order.
    public static let inceptionModules: [String] = {
        var m = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
        let a = ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"]
        let b = ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]
        let c = ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3"] + (1...5).map { "branch7x7dbl_\($0)" } + ["branch_pool"]
        let d = ["branch3x3_1", "branch3x3_2"] + (1...4).map { "branch7x7x3_\($0)" }
        let e = ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a",
                 "branch3x3dbl_3b", "branch_pool"]
        for (block, branches) in [("Mixed_5b", a), ("Mixed_5c", a), ("Mixed_5d", a), ("Mixed_6a", b), ("Mixed_6b", c), ("Mixed_6c", c),
                                  ("Mixed_6d", c), ("Mixed_6e", c), ("Mixed_7a", d), ("Mixed_7b", e), ("Mixed_7c", e)] {
            m += branches.map { "\(block).\($0)" }
        }
        return m
    }()
}

private struct Inception {
    var b: TrunkBuilder
    let torchvision: Bool

    /// Keras' conv2d_bn(x, filters, rows, cols, padding, strides).
    mutating func convBN(_ x: Graph.Node, _ filters: Int, _ rows: Int, _ cols: Int, padding: Padding = .same,
                         strides: Int = 1) throws -> Graph.Node {
        var y = try b.conv(b.autoName("conv2d"), x, filters: filters, kernel: (rows, cols), strides: (strides, strides),
                           padding: padding, useBias: false)
        y = try b.batchNorm(b.autoName("batch_normalization"), y, epsilon: 1e-3, scale: torchvision)
        return b.relu(b.autoName("activation"), y)
    }

    mutating func maxPool(_ x: Graph.Node) -> Graph.Node {
        b.layer(Pool2D(b.autoName("max_pooling2d"), .max, poolSize: (3, 3), strides: (2, 2)), x)
    }

    /// 3x3 stride-1 'same' average pooling: Keras excludes the padding, torchvision counts it.
    mutating func avgPool(_ x: Graph.Node) -> Graph.Node {
        b.layer(Pool2D(b.autoName("average_pooling2d"), .average, poolSize: (3, 3), strides: (1, 1),
                       padding: torchvision ? .symmetric(1) : .same, countPadding: torchvision), x)
    }

    mutating func concat(_ inputs: [Graph.Node], name: String? = nil) -> Graph.Node {
        let n = name ?? b.autoName("concatenate")
        return b.add(Concatenate(n), inputs, channels: inputs.reduce(0) { $0 + b.channels($1) })
    }

    mutating func build() throws {
        b.stage = "stem"
        var x = try convBN(b.graph.output, 32, 3, 3, padding: .valid, strides: 2)
        x = try convBN(x, 32, 3, 3, padding: .valid)
        x = try convBN(x, 64, 3, 3)
        x = maxPool(x)
        x = try convBN(x, 80, 1, 1, padding: .valid)
        x = try convBN(x, 192, 3, 3, padding: .valid)
        x = maxPool(x)

        // mixed 0, 1, 2: 35 x 35 x 256, 288, 288
        for (k, poolFilters) in [32, 64, 64].enumerated() {
            b.stage = "mixed\(k)"
            let branch1x1 = try convBN(x, 64, 1, 1)
            var branch5x5 = try convBN(x, 48, 1, 1)
            branch5x5 = try convBN(branch5x5, 64, 5, 5)
            var branch3x3dbl = try convBN(x, 64, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, poolFilters, 1, 1)
            x = concat([branch1x1, branch5x5, branch3x3dbl, branchPool], name: "mixed\(k)")
        }

        // mixed 3: 17 x 17 x 768
        b.stage = "mixed3"
        do {
            let branch3x3 = try convBN(x, 384, 3, 3, padding: .valid, strides: 2)
            var branch3x3dbl = try convBN(x, 64, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3)
            branch3x3dbl = try convBN(branch3x3dbl, 96, 3, 3, padding: .valid, strides: 2)
            let branchPool = maxPool(x)
            x = concat([branch3x3, branch3x3dbl, branchPool], name: "mixed3")
        }

        // mixed 4, 5, 6, 7: 17 x 17 x 768
        for (k, c7) in [128, 160, 160, 192].enumerated() {
            b.stage = "mixed\(4 + k)"
            let branch1x1 = try convBN(x, 192, 1, 1)
            var branch7x7 = try convBN(x, c7, 1, 1)
            branch7x7 = try convBN(branch7x7, c7, 1, 7)
            branch7x7 = try convBN(branch7x7, 192, 7, 1)
            var branch7x7dbl = try convBN(x, c7, 1, 1)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 7, 1)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 1, 7)
            branch7x7dbl = try convBN(branch7x7dbl, c7, 7, 1)
            branch7x7dbl = try convBN(branch7x7dbl, 192, 1, 7)
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, 192, 1, 1)
            x = concat([branch1x1, branch7x7, branch7x7dbl, branchPool], name: "mixed\(4 + k)")
        }

        // mixed 8: 8 x 8 x 1280
        b.stage = "mixed8"
        do {
            var branch3x3 = try convBN(x, 192, 1, 1)
            branch3x3 = try convBN(branch3x3, 320, 3, 3, padding: .valid, strides: 2)
            var branch7x7x3 = try convBN(x, 192, 1, 1)
            branch7x7x3 = try convBN(branch7x7x3, 192, 1, 7)
            branch7x7x3 = try convBN(branch7x7x3, 192, 7, 1)
            branch7x7x3 = try convBN(branch7x7x3, 192, 3, 3, padding: .valid, strides: 2)
            let branchPool = maxPool(x)
            x = concat([branch3x3, branch7x7x3, branchPool], name: "mixed8")
        }

        // mixed 9, 10: 8 x 8 x 2048
        for k in 0..<2 {
            b.stage = "mixed\(9 + k)"
            let branch1x1 = try convBN(x, 320, 1, 1)
            var branch3x3 = try convBN(x, 384, 1, 1)
            let branch3x3a = try convBN(branch3x3, 384, 1, 3)
            let branch3x3b = try convBN(branch3x3, 384, 3, 1)
            branch3x3 = concat([branch3x3a, branch3x3b], name: "mixed9_\(k)")
            var branch3x3dbl = try convBN(x, 448, 1, 1)
            branch3x3dbl = try convBN(branch3x3dbl, 384, 3, 3)
            let branch3x3dblA = try convBN(branch3x3dbl, 384, 1, 3)
            let branch3x3dblB = try convBN(branch3x3dbl, 384, 3, 1)
            branch3x3dbl = concat([branch3x3dblA, branch3x3dblB])
            var branchPool = avgPool(x)
            branchPool = try convBN(branchPool, 192, 1, 1)
            x = concat([branch1x1, branch3x3, branch3x3dbl, branchPool], name: "mixed\(9 + k)")
        }
    }
}
