import Foundation
import VGGTLTensors
import VGGTLIO

/// PyTorch VGG16 weights (torchvision `vgg16`, `vgg16_bn`, timm `vgg16`) mapped onto our
/// Keras-named layers by position, converted once: conv weights OIHW -> HWIO, linear weights
/// (out, in) -> (in, out), and fc1's input rows permuted from torch's NCHW flatten
/// (c*H*W + h*W + w) to Keras' NHWC flatten ((h*W + w)*C + c).
///
/// torchvision: features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.weight/bias -> block1_conv1 ...
/// block5_conv3 (blocks found from the index gaps the pooling layers leave, so VGG11/13/19 map
/// too); classifier.{0,3,6} -> fc1, fc2, predictions. vgg16_bn: features.N (conv, bn, relu)
/// with bn weight/bias/running_mean/running_var -> blockB_bnI gamma/beta/moving_mean/
/// moving_variance (num_batches_tracked skipped). A state dict saved from `model.features` alone
/// ("0.weight", ...) reads as features.N. timm: pre_logits.fc1 (4096, 512, 7, 7),
/// pre_logits.fc2 (4096, 4096, 1, 1) and head.fc -> fc1, fc2, predictions.
public struct TorchVGG16: TorchNaming {
    public init() {}

    public func trunk(ofTorchNames names: [String]) -> ModelConfig.Trunk? {
        guard Self.looksLikeTorch(names: names) else { return nil }
        return VGG16.hasBatchNorm(names: names) ? .vgg16BN : .vgg16
    }

    public func title(names: [String]) -> String { Self.variant(names: names) }
    public func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchMapping] { try Self.plan(tensors, file: file) }
    public func torchNamed(_ w: WeightSet) throws -> WeightSet { try Self.fromKeras(w) }

    /// The Keras name of the batch normalization that follows conv `blockB_convI`: "blockB_bnI".
    public static func batchNormLayerName(forConv conv: String) -> String { batchNormLayer(forConv: conv) }

    public static func looksLikeTorch(_ w: WeightSet) -> Bool { looksLikeTorch(names: w.names) }

    /// True when the names look like a PyTorch state dict of a VGG (features.N..., classifier.N...,
    /// pre_logits..., head.fc...), with or without DataParallel's "module." prefix.
    public static func looksLikeTorch(names: [String]) -> Bool {
        names.contains { n in
            let s = stripPrefix(n)
            return (s.hasPrefix("features.") || s.hasPrefix("classifier.") || s.hasPrefix("pre_logits.") || s.hasPrefix("head.fc."))
                && !s.contains("/")
        }
    }

    /// The name without DataParallel's "module."; a state dict of `model.features` alone
    /// ("0.weight", "2.bias", ...) is read as features.N.
    static func stripPrefix(_ n: String) -> String {
        let s = n.hasPrefix("module.") ? String(n.dropFirst(7)) : n
        return s.first?.isNumber == true ? "features." + s : s
    }

    /// "torchvision vgg16", "torchvision vgg16_bn" or "timm vgg16" from the names.
    public static func variant(names: [String]) -> String {
        let stripped = names.map(stripPrefix)
        if stripped.contains(where: { $0.hasPrefix("pre_logits.") || $0.hasPrefix("head.fc.") }) { return "timm vgg16" }
        return stripped.contains { $0.hasSuffix(".running_mean") } ? "torchvision vgg16_bn" : "torchvision vgg16"
    }

    static func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchMapping] {
        let shapes = Dictionary(tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        let all = tensors.map(\.name)
        func fail(_ reason: String) -> VGGTLError { .weightNaming(file: file, reason: reason, found: all) }

        var features: [Int: [String: String]] = [:]     // index -> field -> full name
        var classifier: [Int: [String: String]] = [:]
        var timm: [String: String] = [:]                 // "fc1.weight" ... -> full name
        var unknown: [String] = []
        for name in all {
            let s = stripPrefix(name)
            let parts = s.split(separator: ".").map(String.init)
            if parts.count == 3, parts[0] == "features" || parts[0] == "classifier", let i = Int(parts[1]) {
                if parts[0] == "features" { features[i, default: [:]][parts[2]] = name } else { classifier[i, default: [:]][parts[2]] = name }
            } else if parts.count == 3, parts[0] == "pre_logits", parts[1] == "fc1" || parts[1] == "fc2" {
                timm["\(parts[1]).\(parts[2])"] = name
            } else if parts.count == 3, parts[0] == "head", parts[1] == "fc" {
                timm["head.\(parts[2])"] = name
            } else {
                unknown.append(name)
            }
        }
        if !unknown.isEmpty {
            throw fail("cannot map \(listSome(unknown)) onto VGG16 (expected torchvision features.N/classifier.N or timm pre_logits.fc1/fc2 and head.fc)")
        }

        var out: [TorchMapping] = []
        // Convolutions and batch normalizations, in index order.
        let convIndices = features.keys.sorted().filter { shapes[features[$0]?["weight"] ?? ""]?.count == 4 }
        let bnIndices = Set(features.keys.filter { features[$0]?["running_mean"] != nil })
        for i in features.keys where !convIndices.contains(i) && !bnIndices.contains(i) {
            throw fail("features.\(i) is neither a convolution (4-D weight) nor a batch normalization (running_mean)")
        }
        var convNames: [Int: String] = [:]
        if !convIndices.isEmpty {
            let gaps = zip(convIndices, convIndices.dropFirst()).map { $1 - $0 }
            let step = gaps.min() ?? 0
            var block = 1, conv = 1
            convNames[convIndices[0]] = "block1_conv1"
            for (k, gap) in gaps.enumerated() {
                if gap > step { block += 1; conv = 1 } else { conv += 1 }
                convNames[convIndices[k + 1]] = "block\(block)_conv\(conv)"
            }
        }
        var lastConvOut: Int?
        var lastConvName: String?
        for i in features.keys.sorted() {
            let fields = features[i]!
            if let conv = convNames[i] {
                let wName = fields["weight"]!, s = shapes[wName]!
                out.append(TorchMapping(torch: wName, keras: "\(conv)/kernel", layout: .convKernel, kerasShape: [s[2], s[3], s[1], s[0]]))
                if let b = fields["bias"] { out.append(TorchMapping(torch: b, keras: "\(conv)/bias", layout: .copy, kerasShape: shapes[b]!)) }
                for extra in fields.keys where extra != "weight" && extra != "bias" {
                    throw fail("features.\(i).\(extra) is not a convolution weight")
                }
                lastConvOut = s[0]; lastConvName = conv
            } else {
                guard let conv = lastConvName else { throw fail("batch normalization features.\(i) comes before any convolution") }
                let bn = Self.batchNormLayerName(forConv: conv)
                for (field, keras) in [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")] {
                    guard let n = fields[field] else { throw fail("batch normalization features.\(i) has no \(field)") }
                    out.append(TorchMapping(torch: n, keras: "\(bn)/\(keras)", layout: .copy, kerasShape: shapes[n]!))
                }
                for extra in fields.keys where !["weight", "bias", "running_mean", "running_var", "num_batches_tracked"].contains(extra) {
                    throw fail("features.\(i).\(extra) is not a batch normalization weight")
                }
            }
        }

        // The head: torchvision classifier.N linears or timm pre_logits + head.
        var linears: [(weight: String, bias: String?)] = []
        for i in classifier.keys.sorted() {
            let f = classifier[i]!
            guard let w = f["weight"], shapes[w]?.count == 2 else { throw fail("classifier.\(i) is not a linear layer (2-D weight)") }
            for extra in f.keys where extra != "weight" && extra != "bias" { throw fail("classifier.\(i).\(extra) is not a linear layer weight") }
            linears.append((w, f["bias"]))
        }
        if !timm.isEmpty {
            guard linears.isEmpty else { throw fail("both torchvision classifier.N and timm pre_logits/head names are present") }
            for key in ["fc1.weight", "fc2.weight", "head.weight"] where timm[key] != nil || key == "head.weight" {
                guard let w = timm[key] else { throw fail("timm head.fc.weight is missing") }
                linears.append((w, timm[key.replacingOccurrences(of: "weight", with: "bias")]))
            }
        }
        // A state dict of `model.features` alone has no linear layers: a trunk without a head.
        let headNames = linears.isEmpty ? [] : (1..<linears.count).map { "fc\($0)" } + ["predictions"]
        for (k, l) in linears.enumerated() {
            let name = headNames[k], s = shapes[l.weight]!
            let out4 = s.count == 4
            if k == 0 {
                // The first linear reads the flattened conv features.
                let inFeatures = out4 ? s[1] * s[2] * s[3] : s[1]
                let c = out4 ? s[1] : (lastConvOut ?? (inFeatures == 25088 ? 512 : inFeatures))
                guard c > 0, inFeatures % c == 0 else {
                    throw fail("\(l.weight) has \(inFeatures) inputs, not a multiple of the last convolution's \(c) channels")
                }
                var h = out4 ? s[2] : Int(Double(inFeatures / c).squareRoot().rounded())
                var w = out4 ? s[3] : h
                if !out4, h * w != inFeatures / c { h = inFeatures / c; w = 1 }   // not square: cannot be a VGG feature map
                guard h * w * c == inFeatures, out4 || h == w else {
                    throw fail("\(l.weight) has \(inFeatures) inputs: not C x H x W of a square feature map with C = \(c)")
                }
                out.append(TorchMapping(torch: l.weight, keras: "\(name)/kernel", layout: .flattenedKernel(c: c, h: h, w: w), kerasShape: [inFeatures, s[0]]))
            } else {
                guard !out4 || (s[2] == 1 && s[3] == 1) else { throw fail("\(l.weight) has shape \(s): a convolution head other than 1x1 cannot become a dense layer") }
                out.append(TorchMapping(torch: l.weight, keras: "\(name)/kernel", layout: .denseKernel, kerasShape: [s[1], s[0]]))
            }
            if let b = l.bias { out.append(TorchMapping(torch: b, keras: "\(name)/bias", layout: .copy, kerasShape: shapes[b]!)) }
        }
        if out.isEmpty { throw fail("no VGG16 weights found") }
        return out
    }

    /// Torch names and layouts -> Keras names and layouts. Metadata is kept.
    public static func toKeras(_ w: WeightSet) throws -> WeightSet {
        try w.validate(for: w.sourceDescription)
        let plan = try plan(w.tensors.map { ($0.name, $0.shape) }, file: w.sourceDescription)
        return try TorchNames.toKeras(w, plan: TorchNames.renamingHead(plan, as: w.metadata[WeightMetadata.head]))
    }

    /// Keras names and layouts -> torchvision names and layouts (vgg16, or vgg16_bn when the
    /// set has blockB_bnI layers). Layers other than VGG16's are an error that names them.
    public static func fromKeras(_ w: WeightSet) throws -> WeightSet {
        let file = w.sourceDescription
        try w.validate(for: file)
        if looksLikeTorch(w) { return w }
        let byName = Dictionary(w.tensors.map { ($0.name, ($0.shape, $0.values)) }, uniquingKeysWith: { a, _ in a })
        var convs: [(block: Int, conv: Int)] = []
        for layer in w.layerNames {
            if let (b, c) = VGG16.parseBlockLayer(layer, kind: "conv") { convs.append((b, c)) }
        }
        convs.sort { ($0.block, $0.conv) < ($1.block, $1.conv) }
        let hasBN = w.layerNames.contains { VGG16.parseBlockLayer($0, kind: "bn") != nil }
        var torchName: [String: (name: String, layout: TorchLayout)] = [:]
        var index = 0, previousBlock = convs.first?.block ?? 1
        var lastConvOut: Int?
        for (b, c) in convs {
            if b != previousBlock { index += 1; previousBlock = b }   // the pool that ends a block
            let conv = "block\(b)_conv\(c)"
            torchName["\(conv)/kernel"] = ("features.\(index).weight", .convKernel)
            torchName["\(conv)/bias"] = ("features.\(index).bias", .copy)
            lastConvOut = byName["\(conv)/kernel"]?.0.last
            if hasBN {
                let bn = Self.batchNormLayerName(forConv: conv)
                for (k, t) in [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")] {
                    torchName["\(bn)/\(k)"] = ("features.\(index + 1).\(t)", .copy)
                }
                index += 3
            } else {
                index += 2
            }
        }
        // The dense layers on the trunk, in the file's order (Keras' fc1, fc2, predictions; vggtl's
        // dense, predictions), take classifier.0, .3, .6 (Linear, ReLU, Dropout, ...); the first
        // reads the flattened features, so its rows go back to torch's NCHW order.
        let head = TorchNames.denseLayers(w)
        for (position, layer) in head.enumerated() {
            var layout = TorchLayout.denseKernel
            if position == 0, let s = byName["\(layer)/kernel"]?.0, s.count == 2 {
                let c = lastConvOut ?? (s[0] == 25088 ? 512 : s[0])
                let hw = s[0] / max(c, 1), side = Int(Double(hw).squareRoot().rounded())
                guard c > 0, s[0] % c == 0, side * side == hw else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(layer)/kernel has \(s[0]) inputs: not H x W x C of a square feature map with C = \(c)", found: w.names)
                }
                layout = .flattenedKernel(c: c, h: side, w: side)
            }
            torchName["\(layer)/kernel"] = ("classifier.\(position * 3).weight", layout)
            torchName["\(layer)/bias"] = ("classifier.\(position * 3).bias", .copy)
        }
        let unmapped = w.names.filter { torchName[$0] == nil }
        if !unmapped.isEmpty {
            throw VGGTLError.weightNaming(file: file, reason: "cannot give torchvision VGG16 names to \(listSome(unmapped)) (only blockB_convI, blockB_bnI, fc1, fc2 and predictions map)", found: w.names)
        }
        var out = WeightSet(metadata: w.metadata, source: w.source)
        out.metadata["format"] = "pt"   // what safetensors.torch writes
        for t in w.tensors {
            let (name, layout) = torchName[t.name]!
            let torchShape: [Int]
            switch layout {
            case .convKernel:
                guard t.shape.count == 4 else { throw VGGTLError.shapeMismatch(what: "\(file): \(t.name)", expected: [3, 3, -1, -1], got: t.shape) }
                torchShape = [t.shape[3], t.shape[2], t.shape[0], t.shape[1]]
            case .denseKernel, .flattenedKernel:
                guard t.shape.count == 2 else { throw VGGTLError.shapeMismatch(what: "\(file): \(t.name)", expected: [-1, -1], got: t.shape) }
                torchShape = [t.shape[1], t.shape[0]]
            case .copy: torchShape = t.shape
            }
            out.tensors.append((name, torchShape, layout.convert(t.values, shape: t.shape, toKeras: false)))
        }
        return out
    }
}
