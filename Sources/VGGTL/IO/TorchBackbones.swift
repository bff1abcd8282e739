import Foundation

/// torchvision `resnet50` and `inception_v3` state dicts mapped onto our Keras-named layers
/// (the `.resnet50Torchvision` and `.inceptionV3Torchvision` trunks), converted once: conv
/// weights OIHW -> HWIO, `fc.weight` (out, in) -> `predictions/kernel` (in, out), BatchNorm
/// weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance;
/// `num_batches_tracked` is skipped, and so is Inception3's auxiliary classifier (`AuxLogits.*`,
/// a training-time branch Keras' InceptionV3 does not have).
///
/// Each architecture has one fixed table of every torch tensor name and the Keras name it
/// becomes, so the mapping does not depend on the order tensors are stored in, and the table
/// read backwards gives torchvision names to Keras-named weights (`vggtl weights convert
/// --naming torch`).
/// - ResNet50: conv1/bn1 -> conv1_conv/conv1_bn; layer{L}.{B}.conv{K}/bn{K} ->
///   conv{L+1}_block{B+1}_{K}_conv/_bn; layer{L}.0.downsample.0/.1 -> conv{L+1}_block1_0_conv/_0_bn.
/// - Inception3: the k-th BasicConv2d in network order (Conv2d_1a_3x3, ..., Mixed_5b.branch1x1,
///   ..., Mixed_7c.branch_pool; the order Keras creates its conv2d_bn blocks in) ->
///   conv2d_k / batch_normalization_k (a fresh Keras session's names: conv2d, conv2d_1, ...).
public enum TorchBackbone: String, CaseIterable, Sendable {
    case resnet50, inceptionV3

    /// The trunk the file's tensors describe.
    public var trunk: ModelConfig.Trunk { self == .resnet50 ? .resnet50Torchvision : .inceptionV3Torchvision }
    public var title: String { self == .resnet50 ? "torchvision resnet50" : "torchvision inception_v3" }

    /// The architecture a torch state dict holds, from its names; nil when it is none of these.
    public static func detect(names: [String]) -> TorchBackbone? {
        let s = Set(names.map(TorchBackbone.strip))
        if s.contains("conv1.weight"), s.contains(where: { $0.hasPrefix("layer1.") }) { return .resnet50 }
        if s.contains(where: { $0.hasPrefix("Conv2d_1a_3x3.") || $0.hasPrefix("Mixed_5b.") }) { return .inceptionV3 }
        return nil
    }

    /// Without DataParallel's "module." prefix.
    static func strip(_ n: String) -> String { n.hasPrefix("module.") ? String(n.dropFirst(7)) : n }

    /// Tensors a mapping leaves out on purpose: Inception3's auxiliary classifier.
    public static func isLeftOut(_ name: String) -> Bool {
        let s = strip(name)
        return s.hasPrefix("AuxLogits.") || s.hasSuffix(".num_batches_tracked") || s == "num_batches_tracked"
    }

    /// Every torch tensor name of the architecture (num_batches_tracked and AuxLogits aside) and
    /// its Keras name, in state_dict order; `fc.*` last.
    public var table: [(torch: String, keras: String)] {
        switch self {
        case .resnet50: return Self.resnetTable
        case .inceptionV3: return Self.inceptionTable
        }
    }

    static let bnFields = [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")]
    static let fc = [("fc.weight", "predictions/kernel"), ("fc.bias", "predictions/bias")]

    static func convBN(torchConv: String, torchBN: String, keras conv: String, _ bn: String) -> [(torch: String, keras: String)] {
        [(torchConv + ".weight", conv + "/kernel")] + bnFields.map { (torchBN + "." + $0.0, bn + "/" + $0.1) }
    }

    static let resnetTable: [(torch: String, keras: String)] = {
        var t = convBN(torchConv: "conv1", torchBN: "bn1", keras: "conv1_conv", "conv1_bn")
        for (l, stage) in ResNet50.stages.enumerated() {
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

    static let inceptionTable: [(torch: String, keras: String)] = {
        var t: [(torch: String, keras: String)] = []
        for (k, module) in inceptionModules.enumerated() {
            let suffix = k == 0 ? "" : "_\(k)"
            t += convBN(torchConv: "\(module).conv", torchBN: "\(module).bn", keras: "conv2d\(suffix)", "batch_normalization\(suffix)")
        }
        return t + fc
    }()

    /// Torch name -> Keras name, and back.
    var forward: [String: String] { Dictionary(uniqueKeysWithValues: table.map { ($0.torch, $0.keras) }) }
    var backward: [String: String] { Dictionary(uniqueKeysWithValues: table.map { ($0.keras, $0.torch) }) }

    /// The Keras weight each torch tensor becomes (left-out tensors are absent). Throws naming
    /// the tensors that are not this architecture's.
    func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchVGG16.Mapping] {
        let forward = self.forward
        var out: [TorchVGG16.Mapping] = [], unknown: [String] = []
        for (name, shape) in tensors where !Self.isLeftOut(name) {
            guard let keras = forward[Self.strip(name)] else { unknown.append(name); continue }
            if keras.hasSuffix("/kernel") {
                if shape.count == 4 {
                    out.append(.init(torch: name, keras: keras, kind: .convKernel, kerasShape: [shape[2], shape[3], shape[1], shape[0]]))
                } else if shape.count == 2, keras.hasPrefix("predictions/") {
                    out.append(.init(torch: name, keras: keras, kind: .denseKernel, kerasShape: [shape[1], shape[0]]))
                } else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(name) has shape \(compactShape(shape)): not the \(shape.count == 2 ? "4-D convolution" : "2-D linear") weight \(title) has there", found: tensors.map(\.name))
                }
            } else {
                guard shape.count == 1 else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(name) has shape \(compactShape(shape)): \(title) has a vector there", found: tensors.map(\.name))
                }
                out.append(.init(torch: name, keras: keras, kind: .copy, kerasShape: shape))
            }
        }
        if !unknown.isEmpty {
            throw VGGTLError.weightNaming(file: file, reason: "cannot map \(listSome(unknown)) onto \(title) (its state dict has \(table.first!.torch), ..., fc.bias)", found: tensors.map(\.name))
        }
        if out.isEmpty { throw VGGTLError.weightNaming(file: file, reason: "no \(title) weights found", found: tensors.map(\.name)) }
        return out
    }

    /// Keras names and layouts -> torchvision's (the `.resnet50Torchvision` or
    /// `.inceptionV3Torchvision` trunk's weights). Names outside the architecture are an error.
    public func fromKeras(_ w: WeightSet) throws -> WeightSet {
        let file = w.sourceDescription
        try w.validate(for: file)
        let backward = self.backward
        let unmapped = w.names.filter { backward[$0] == nil }
        if !unmapped.isEmpty {
            throw VGGTLError.weightNaming(file: file, reason: "cannot give \(title) names to \(listSome(unmapped))", found: w.names)
        }
        var out = WeightSet(metadata: w.metadata, source: w.source)
        out.metadata["format"] = "pt"
        for t in w.tensors {
            let name = backward[t.name]!
            switch t.shape.count {
            case 4:
                out.tensors.append((name, [t.shape[3], t.shape[2], t.shape[0], t.shape[1]],
                                    TorchVGG16.convert(t.values, shape: t.shape, kind: .convKernel, toKeras: false)))
            case 2:
                out.tensors.append((name, [t.shape[1], t.shape[0]], TorchVGG16.convert(t.values, shape: t.shape, kind: .denseKernel, toKeras: false)))
            default:
                out.tensors.append((name, t.shape, t.values))
            }
        }
        return out
    }
}

/// PyTorch names of any backbone vggtl maps (torchvision/timm VGG16 and VGG16-BN, torchvision
/// resnet50 and inception_v3): which one a state dict is, and its tensors under Keras names.
public enum TorchNames {
    public static func looksLikeTorch(_ w: WeightSet) -> Bool { looksLikeTorch(names: w.names) }
    public static func looksLikeTorch(names: [String]) -> Bool {
        TorchBackbone.detect(names: names) != nil || TorchVGG16.looksLikeTorch(names: names)
    }

    /// "torchvision resnet50", "torchvision vgg16_bn", ...
    public static func variant(names: [String]) -> String {
        TorchBackbone.detect(names: names)?.title ?? TorchVGG16.variant(names: names)
    }

    /// The trunk a torch state dict describes (nil: not torch names).
    public static func trunk(names: [String]) -> ModelConfig.Trunk? {
        if let b = TorchBackbone.detect(names: names) { return b.trunk }
        guard TorchVGG16.looksLikeTorch(names: names) else { return nil }
        return WeightSet.hasBatchNorm(names: names) ? .vgg16BN : .vgg16
    }

    static func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchVGG16.Mapping] {
        if let b = TorchBackbone.detect(names: tensors.map(\.name)) { return try b.plan(tensors, file: file) }
        return try TorchVGG16.plan(tensors, file: file)
    }

    /// Tensors the mapping leaves out on purpose (Inception3's AuxLogits.*), for the one-line note.
    public static func leftOut(names: [String]) -> [String] {
        guard TorchBackbone.detect(names: names) != nil else { return [] }
        return names.filter { TorchBackbone.isLeftOut($0) && !$0.hasSuffix("num_batches_tracked") }
    }

    /// See `TorchVGG16.kerasTargets`; any backbone.
    public static func kerasTargets(for tensors: [(name: String, shape: [Int])], file: String = "weights") throws -> [String: (name: String, shape: [Int])] {
        Dictionary(try plan(tensors, file: file).map { ($0.torch, ($0.keras, $0.kerasShape)) }, uniquingKeysWith: { a, _ in a })
    }

    /// See `TorchVGG16.origins`; any backbone.
    public static func origins(of w: WeightSet) throws -> [String: (torch: String, torchShape: [Int], toTorchShape: ([Int]) -> [Int])] {
        try TorchVGG16.origins(of: w, plan: plan(w.tensors.map { ($0.name, $0.shape) }, file: w.sourceDescription))
    }

    /// Torch names and layouts -> Keras names and layouts, any backbone. Metadata is kept.
    public static func toKeras(_ w: WeightSet) throws -> WeightSet {
        try TorchVGG16.toKeras(w, plan: plan(w.tensors.map { ($0.name, $0.shape) }, file: w.sourceDescription))
    }

    /// Keras names -> torchvision names for `trunk` (VGG16, VGG16-BN, or the torchvision
    /// ResNet50/InceptionV3 trunks); the Keras architectures have no torchvision twin.
    public static func fromKeras(_ w: WeightSet, trunk: ModelConfig.Trunk) throws -> WeightSet {
        if looksLikeTorch(w) { return w }
        switch trunk {
        case .vgg16, .vgg16BN, .none: return try TorchVGG16.fromKeras(w)
        case .resnet50Torchvision: return try TorchBackbone.resnet50.fromKeras(w)
        case .inceptionV3Torchvision: return try TorchBackbone.inceptionV3.fromKeras(w)
        case .resnet50, .inceptionV3:
            throw VGGTLError.badFlag(flag: "--naming", value: "torch", expected: "keras: these are Keras' \(Backbone.of(trunk)!.title) weights, an architecture torchvision does not have "
                                     + "(torch names exist for vgg16, vgg16-bn, resnet50-torchvision and inceptionv3-torchvision)")
        }
    }
}
