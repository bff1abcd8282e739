import VGGTLTensors
import VGGTLIO

/// A torchvision state dict as one fixed table of every torch tensor name and the Keras name it
/// becomes (ResNet50's and InceptionV3's: see their families), so the mapping does not depend on
/// the order tensors are stored in, and the table read backwards gives torchvision names to
/// Keras-named weights (`vggtl weights convert --naming torch`). Converted once: conv weights
/// OIHW -> HWIO, `fc.weight` (out, in) -> `predictions/kernel` (in, out), BatchNorm
/// weight/bias/running_mean/running_var -> gamma/beta/moving_mean/moving_variance;
/// `num_batches_tracked` is skipped, and so are the prefixes in `leftOutPrefixes`.
public struct TorchBackbone: TorchNaming, Equatable {
    /// The trunk the file's tensors describe.
    public let trunk: ModelConfig.Trunk
    /// "torchvision resnet50".
    public let title: String
    /// Every torch tensor name of the architecture (num_batches_tracked and left-out tensors
    /// aside) and its Keras name, in state_dict order; `fc.*` last.
    public let table: [(torch: String, keras: String)]
    /// Module prefixes the mapping leaves out on purpose (Inception3's training-time "AuxLogits."), and why.
    public let leftOutPrefixes: [String]
    public let leftOutReason: String
    /// Whether a state dict's names (without "module.") are this architecture's.
    let recognises: @Sendable (Set<String>) -> Bool

    public init(trunk: ModelConfig.Trunk, title: String, table: [(torch: String, keras: String)], leftOut: (prefixes: [String], reason: String) = ([], ""),
                recognises: @escaping @Sendable (Set<String>) -> Bool) {
        self.trunk = trunk; self.title = title; self.table = table; leftOutPrefixes = leftOut.prefixes; leftOutReason = leftOut.reason
        self.recognises = recognises
    }

    public static func == (a: TorchBackbone, b: TorchBackbone) -> Bool { a.trunk == b.trunk }

    /// The table-named architecture a torch state dict holds, from its names; nil when it is none.
    public static func detect(names: [String]) -> TorchBackbone? {
        Backbones.all.lazy.compactMap { $0.torchNaming as? TorchBackbone }.first { $0.trunk(ofTorchNames: names) != nil }
    }

    public func trunk(ofTorchNames names: [String]) -> ModelConfig.Trunk? {
        recognises(Set(names.map(TorchNames.strip))) ? trunk : nil
    }

    public func title(names: [String]) -> String { title }

    /// Tensors a mapping leaves out on purpose, num_batches_tracked included.
    func isLeftOut(_ name: String) -> Bool {
        let s = TorchNames.strip(name)
        return leftOutPrefixes.contains { s.hasPrefix($0) } || s.hasSuffix(".num_batches_tracked") || s == "num_batches_tracked"
    }

    public func leftOut(names: [String]) -> [String] {
        names.filter { isLeftOut($0) && !$0.hasSuffix("num_batches_tracked") }
    }

    static let bnFields = [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")]
    /// torchvision's classifier, Keras' predictions.
    public static let fc: [(torch: String, keras: String)] = [("fc.weight", "predictions/kernel"), ("fc.bias", "predictions/bias")]

    /// A convolution without bias and its BatchNorm: torchvision's conv + bn modules, Keras' layers.
    public static func convBN(torchConv: String, torchBN: String, keras conv: String, _ bn: String) -> [(torch: String, keras: String)] {
        [(torchConv + ".weight", conv + "/kernel")] + bnFields.map { (torchBN + "." + $0.0, bn + "/" + $0.1) }
    }

    /// Torch name -> Keras name, and back.
    var forward: [String: String] { Dictionary(uniqueKeysWithValues: table.map { ($0.torch, $0.keras) }) }
    var backward: [String: String] { Dictionary(uniqueKeysWithValues: table.map { ($0.keras, $0.torch) }) }

    /// A head of its own in place of torchvision's `fc`: `fc = Sequential(Linear, ReLU, Dropout,
    /// Linear)` gives fc.0, fc.3, ... Its Keras names by order, as Keras names Dense layers:
    /// dense, dense_1, ..., the last `predictions` (vggtl's head is dense, predictions).
    static func sequentialHead(_ names: [String]) -> [String: String] {
        var indices: [Int: [String]] = [:]
        for n in names {
            let parts = TorchNames.strip(n).split(separator: ".")
            if parts.count == 3, parts[0] == "fc", let i = Int(parts[1]) { indices[i, default: []].append(n) }
        }
        let order = indices.keys.sorted()
        var out: [String: String] = [:]
        for (k, i) in order.enumerated() {
            let layer = k == order.count - 1 ? "predictions" : k == 0 ? "dense" : "dense_\(k)"
            for n in indices[i]! {
                let field = TorchNames.strip(n).split(separator: ".")[2]
                out[n] = "\(layer)/\(field == "weight" ? "kernel" : field)"
            }
        }
        return out
    }

    public func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchMapping] {
        let forward = self.forward
        let head = Self.sequentialHead(tensors.map(\.name))
        var out: [TorchMapping] = [], unknown: [String] = []
        for (name, shape) in tensors where !isLeftOut(name) {
            guard let keras = forward[TorchNames.strip(name)] ?? head[name] else { unknown.append(name); continue }
            if keras.hasSuffix("/depthwise_kernel") {
                // torch's depthwise [C, 1, kH, kW] is OIHW with one input channel: its HWIO
                // transpose [kH, kW, 1, C] has the memory of Keras' [kH, kW, C, 1].
                guard shape.count == 4, shape[1] == 1 else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(name) has shape \(compactShape(shape)): not the [C, 1, kH, kW] depthwise weight \(title) has there", found: tensors.map(\.name))
                }
                out.append(.init(torch: name, keras: keras, layout: .convKernel, kerasShape: [shape[2], shape[3], shape[0], 1]))
            } else if keras.hasSuffix("/kernel") {
                if shape.count == 4 {
                    out.append(.init(torch: name, keras: keras, layout: .convKernel, kerasShape: [shape[2], shape[3], shape[1], shape[0]]))
                } else if shape.count == 2, keras.hasPrefix("predictions/") || head[name] != nil {
                    out.append(.init(torch: name, keras: keras, layout: .denseKernel, kerasShape: [shape[1], shape[0]]))
                } else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(name) has shape \(compactShape(shape)): not the \(shape.count == 2 ? "4-D convolution" : "2-D linear") weight \(title) has there", found: tensors.map(\.name))
                }
            } else {
                guard shape.count == 1 else {
                    throw VGGTLError.weightNaming(file: file, reason: "\(name) has shape \(compactShape(shape)): \(title) has a vector there", found: tensors.map(\.name))
                }
                out.append(.init(torch: name, keras: keras, layout: .copy, kerasShape: shape))
            }
        }
        if !unknown.isEmpty {
            throw VGGTLError.weightNaming(file: file, reason: "cannot map \(listSome(unknown)) onto \(title) (its state dict has \(table.first!.torch), ..., fc.bias)", found: tensors.map(\.name))
        }
        if out.isEmpty { throw VGGTLError.weightNaming(file: file, reason: "no \(title) weights found", found: tensors.map(\.name)) }
        return out
    }

    /// Keras names and layouts -> torchvision's; a head of its own (dense layers other than
    /// Keras' predictions alone) becomes fc.0, fc.3, ... Names outside the architecture are an error.
    public func torchNamed(_ w: WeightSet) throws -> WeightSet {
        let file = w.sourceDescription
        try w.validate(for: file)
        var backward = self.backward
        let head = TorchNames.denseLayers(w)
        if head != ["predictions"] {
            for (k, layer) in head.enumerated() {
                backward["\(layer)/kernel"] = "fc.\(3 * k).weight"
                backward["\(layer)/bias"] = "fc.\(3 * k).bias"
            }
        }
        let unmapped = w.names.filter { backward[$0] == nil }
        if !unmapped.isEmpty {
            throw VGGTLError.weightNaming(file: file, reason: "cannot give \(title) names to \(listSome(unmapped))", found: w.names)
        }
        var out = WeightSet(metadata: w.metadata, source: w.source)
        out.metadata["format"] = "pt"
        for t in w.tensors {
            let name = backward[t.name]!
            switch t.shape.count {
            case 4 where t.name.hasSuffix("/depthwise_kernel"):
                // Keras' [kH, kW, C, 1] has the memory of torch's [C, 1, kH, kW] read as HWIO.
                out.tensors.append((name, [t.shape[2], 1, t.shape[0], t.shape[1]], TorchLayout.convKernel.convert(t.values, shape: t.shape, toKeras: false)))
            case 4:
                out.tensors.append((name, [t.shape[3], t.shape[2], t.shape[0], t.shape[1]], TorchLayout.convKernel.convert(t.values, shape: t.shape, toKeras: false)))
            case 2:
                out.tensors.append((name, [t.shape[1], t.shape[0]], TorchLayout.denseKernel.convert(t.values, shape: t.shape, toKeras: false)))
            default:
                out.tensors.append((name, t.shape, t.values))
            }
        }
        return out
    }
}
