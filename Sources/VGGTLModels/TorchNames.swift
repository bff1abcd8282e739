import Foundation
import VGGTLTensors
import VGGTLIO

/// A PyTorch state dict's names for one architecture (torchvision's, timm's), mapped onto our
/// Keras-named layers: each backbone that has them gives its own (`Backbone.torchNaming`).
public protocol TorchNaming: Sendable {
    /// The trunk a state dict with these names holds; nil when they are not this naming's.
    func trunk(ofTorchNames names: [String]) -> ModelConfig.Trunk?
    /// "torchvision resnet50", "timm vgg16", ... for the names of a state dict it recognises.
    func title(names: [String]) -> String
    /// The Keras weight each torch tensor becomes (tensors left out on purpose are absent).
    /// Throws naming the tensors it cannot place.
    func plan(_ tensors: [(name: String, shape: [Int])], file: String) throws -> [TorchMapping]
    /// Keras names and layouts -> these torch names and layouts. Names outside the architecture
    /// are an error that names them.
    func torchNamed(_ w: WeightSet) throws -> WeightSet
    /// Tensors the mapping leaves out on purpose, and why, for the one-line note.
    func leftOut(names: [String]) -> [String]
    var leftOutReason: String { get }
}

extension TorchNaming {
    public func leftOut(names: [String]) -> [String] { [] }
    public var leftOutReason: String { "" }
}

/// One torch tensor and the Keras weight it becomes.
public struct TorchMapping {
    public var torch: String
    public var keras: String
    public var layout: TorchLayout
    public var kerasShape: [Int]
}

/// How a torch tensor's values move to Keras' layout (converted once, at load).
public enum TorchLayout: Equatable, Sendable {
    /// OIHW -> HWIO.
    case convKernel
    /// Biases, BatchNorm vectors.
    case copy
    /// (out, in) or (out, in, 1, 1) -> (in, out).
    case denseKernel
    /// A dense layer on flattened conv features: (out, C*H*W) or (out, C, H, W), NCHW rows ->
    /// NHWC rows (VGG16's fc1: c*H*W + h*W + w -> (h*W + w)*C + c).
    case flattenedKernel(c: Int, h: Int, w: Int)

    /// The torch shape a Keras shape corresponds to (for errors that name what the user has).
    func torchShape(_ keras: [Int]) -> [Int] {
        switch self {
        case .copy: return keras
        case .convKernel: return keras.count == 4 ? [keras[3], keras[2], keras[0], keras[1]] : keras
        case .denseKernel, .flattenedKernel: return keras.count == 2 ? [keras[1], keras[0]] : keras
        }
    }

    /// One tensor between layouts; `shape` is the source layout's.
    public func convert(_ v: [Float], shape s: [Int], toKeras: Bool) -> [Float] {
        switch self {
        case .copy:
            return v
        case .convKernel:
            // OIHW is [O, (I, HW)] and HWIO is [(HW, I), O]: the same move as a flattened kernel's.
            return toKeras ? Self.channelsFirstRowsToLast(v, outputs: s[0], channels: s[1], pixels: s[2] * s[3])
                           : Self.channelsLastRowsToFirst(v, outputs: s[3], channels: s[2], pixels: s[0] * s[1])
        case .denseKernel:
            return Self.transposed(v, rows: s[0], cols: s.dropFirst().reduce(1, *))
        case let .flattenedKernel(c, h, w):
            return toKeras ? Self.channelsFirstRowsToLast(v, outputs: s[0], channels: c, pixels: h * w)
                           : Self.channelsLastRowsToFirst(v, outputs: s[1], channels: c, pixels: h * w)
        }
    }

    /// torch [O, C*HW] (input index c*HW + p) -> Keras [HW*C, O] (row p*C + c): a transpose,
    /// then whole rows moved.
    static func channelsFirstRowsToLast(_ v: [Float], outputs o: Int, channels c: Int, pixels hw: Int) -> [Float] {
        let t = transposed(v, rows: o, cols: c * hw)   // [(c, p), O]
        return permuted(t, count: t.count) { dst in
            t.withUnsafeBufferPointer { src in
                for cc in 0..<c {
                    for p in 0..<hw {
                        (dst.baseAddress! + (p * c + cc) * o).update(from: src.baseAddress! + (cc * hw + p) * o, count: o)
                    }
                }
            }
        }
    }

    /// Keras [HW*C, O] -> torch [O, C*HW]: the inverse of `channelsFirstRowsToLast`.
    static func channelsLastRowsToFirst(_ v: [Float], outputs o: Int, channels c: Int, pixels hw: Int) -> [Float] {
        let rows = permuted(v, count: v.count) { dst in
            v.withUnsafeBufferPointer { src in
                for cc in 0..<c {
                    for p in 0..<hw {
                        (dst.baseAddress! + (cc * hw + p) * o).update(from: src.baseAddress! + (p * c + cc) * o, count: o)
                    }
                }
            }
        }
        return transposed(rows, rows: c * hw, cols: o)
    }

    static func transposed(_ v: [Float], rows: Int, cols: Int) -> [Float] {
        permuted(v, count: rows * cols) { dst in
            v.withUnsafeBufferPointer { src in
                // Tiled so both sides stay in cache (VGG16's fc1 is 400 MB).
                let tile = 32
                for r0 in stride(from: 0, to: rows, by: tile) {
                    for c0 in stride(from: 0, to: cols, by: tile) {
                        for r in r0..<min(r0 + tile, rows) {
                            for c in c0..<min(c0 + tile, cols) { dst[c * rows + r] = src[r * cols + c] }
                        }
                    }
                }
            }
        }
    }

    static func permuted(_ v: [Float], count: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        precondition(v.count == count)
        return [Float](unsafeUninitializedCapacity: count) { buf, done in
            body(buf)
            done = count
        }
    }
}

/// PyTorch names of any backbone: which one a state dict is (each backbone's `TorchNaming`
/// asked in `Backbones.all` order, the fixed tables first), and its tensors under Keras names.
public enum TorchNames {
    /// The naming that recognises these names, and the trunk they hold.
    static func naming(of names: [String]) -> (naming: any TorchNaming, trunk: ModelConfig.Trunk)? {
        // The fixed tables (which name exact tensors) first: VGG16's naming takes any
        // features.N/classifier.N names, which MobileNetV2's state dict has too.
        let namings = Backbones.all.compactMap(\.torchNaming)
        for n in namings.filter({ $0 is TorchBackbone }) + namings.filter({ !($0 is TorchBackbone) }) {
            if let t = n.trunk(ofTorchNames: names) { return (n, t) }
        }
        return nil
    }

    /// The naming of these names, else the default backbone's (whose errors say what it expects).
    static func namingOrDefault(_ names: [String]) -> any TorchNaming {
        naming(of: names)?.naming ?? Backbones.default.torchNaming!
    }

    public static func looksLikeTorch(_ w: WeightSet) -> Bool { looksLikeTorch(names: w.names) }
    public static func looksLikeTorch(names: [String]) -> Bool { naming(of: names) != nil }

    /// "torchvision resnet50", "torchvision vgg16_bn", ...
    public static func variant(names: [String]) -> String { namingOrDefault(names).title(names: names) }

    /// The trunk a torch state dict describes (nil: not torch names).
    public static func trunk(names: [String]) -> ModelConfig.Trunk? { naming(of: names)?.trunk }

    /// The naming's plan, its dense layers renamed as `metadata`'s `vggtl.head` lists them.
    static func plan(_ tensors: [(name: String, shape: [Int])], file: String, metadata: [String: String] = [:]) throws -> [TorchMapping] {
        let plan = try namingOrDefault(tensors.map(\.name)).plan(tensors, file: file)
        return renamingHead(plan, as: metadata[WeightMetadata.head])
    }

    /// The dense layers of a plan (the head: no trunk has one), in order, given the Keras names
    /// `head` lists; the plan as it is when the count differs.
    static func renamingHead(_ plan: [TorchMapping], as head: String?) -> [TorchMapping] {
        guard let head else { return plan }
        let names = head.split(separator: ",").map(String.init)
        var dense: [String] = []
        for m in plan where m.layout != .copy && m.layout != .convKernel {
            let layer = layerName(of: m.keras)
            if !dense.contains(layer) { dense.append(layer) }
        }
        guard dense.count == names.count else { return plan }
        let renamed = Dictionary(uniqueKeysWithValues: zip(dense, names))
        return plan.map { m in
            var m = m
            if let new = renamed[layerName(of: m.keras)] { m.keras = new + m.keras.dropFirst(layerName(of: m.keras).count) }
            return m
        }
    }

    /// The Keras layers with a 2-D kernel (dense layers) in the order they compute: Keras' top as
    /// fc1, fc2, predictions and `predictions` last whatever order a file lists them in; others
    /// (vggtl's `dense`, a tutorial's `dense_1`) in the set's order.
    static func denseLayers(_ w: WeightSet) -> [String] {
        let rank = ["fc1": 0, "fc2": 1, "predictions": 3]
        return w.layerNames.filter { w["\($0)/kernel"]?.shape.count == 2 }
            .enumerated().sorted { (rank[$0.element] ?? 2, $0.offset) < (rank[$1.element] ?? 2, $1.offset) }.map(\.element)
    }

    /// Tensors the mapping leaves out on purpose (Inception3's AuxLogits.*), and why, for the one-line note.
    public static func leftOut(names: [String]) -> (tensors: [String], reason: String) {
        guard let n = naming(of: names)?.naming else { return ([], "") }
        return (n.leftOut(names: names), n.leftOutReason)
    }

    /// Which Keras weight each torch tensor becomes, and its shape there (names absent from the
    /// answer are skipped, e.g. num_batches_tracked). Throws naming the tensors it cannot place.
    public static func kerasTargets(for tensors: [(name: String, shape: [Int])], file: String = "weights",
                                    metadata: [String: String] = [:]) throws -> [String: (name: String, shape: [Int])] {
        Dictionary(try plan(tensors, file: file, metadata: metadata).map { ($0.torch, ($0.keras, $0.kerasShape)) }, uniquingKeysWith: { a, _ in a })
    }

    /// For each Keras weight a torch file maps to: the torch tensor it comes from, its shape, and
    /// the torch shape a Keras shape corresponds to (for errors that name what the user has).
    public static func origins(of w: WeightSet) throws -> [String: (torch: String, torchShape: [Int], toTorchShape: ([Int]) -> [Int])] {
        origins(of: w, plan: try plan(w.tensors.map { ($0.name, $0.shape) }, file: w.sourceDescription, metadata: w.metadata))
    }

    static func origins(of w: WeightSet, plan: [TorchMapping]) -> [String: (torch: String, torchShape: [Int], toTorchShape: ([Int]) -> [Int])] {
        let shapes = Dictionary(w.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var out: [String: (torch: String, torchShape: [Int], toTorchShape: ([Int]) -> [Int])] = [:]
        for m in plan { out[m.keras] = (m.torch, shapes[m.torch] ?? [], m.layout.torchShape) }
        return out
    }

    /// Torch names and layouts -> Keras names and layouts, any backbone. Metadata is kept.
    public static func toKeras(_ w: WeightSet) throws -> WeightSet {
        try w.validate(for: w.sourceDescription)
        return try toKeras(w, plan: plan(w.tensors.map { ($0.name, $0.shape) }, file: w.sourceDescription, metadata: w.metadata))
    }

    /// `toKeras` with the mapping given.
    static func toKeras(_ w: WeightSet, plan mappings: [TorchMapping]) throws -> WeightSet {
        try w.validate(for: w.sourceDescription)
        let values = Dictionary(w.tensors.map { ($0.name, ($0.shape, $0.values)) }, uniquingKeysWith: { a, _ in a })
        var out = WeightSet(metadata: w.metadata, source: w.source)
        if out.metadata["format"] == "pt" { out.metadata["format"] = nil }
        for m in mappings {
            let (shape, v) = values[m.torch]!
            out.tensors.append((m.keras, m.kerasShape, m.layout.convert(v, shape: shape, toKeras: true)))
        }
        return out
    }

    /// Keras names -> the torch names of `trunk` (its `Backbone.torchNaming`); Keras-only
    /// architectures have no torch twin.
    public static func fromKeras(_ w: WeightSet, trunk: ModelConfig.Trunk) throws -> WeightSet {
        if looksLikeTorch(w) { return w }
        let backbone = trunk.backbone ?? Backbones.default
        guard let naming = backbone.torchNaming else {
            let named = Backbones.all.filter { $0.torchNaming != nil }.map(\.trunk.rawValue)
            throw VGGTLError.invalidSetting(.naming, value: "torch", expected: "keras: these are Keras' \(backbone.title) weights, an architecture torchvision does not have "
                                     + "(torch names exist for \(Backbones.list(named)))")
        }
        var out = try naming.torchNamed(w)
        let head = denseLayers(w)
        if !head.isEmpty { out.metadata[WeightMetadata.head] = head.joined(separator: ",") }
        return out
    }

    /// Without DataParallel's "module." prefix.
    static func strip(_ n: String) -> String { n.hasPrefix("module.") ? String(n.dropFirst(7)) : n }
}

extension WeightFile {
    /// `load`, then PyTorch names (torchvision, timm) mapped to Keras' layers and layouts.
    public static func loadKerasNamed(_ url: URL) throws -> WeightSet {
        let w = try load(url)
        return TorchNames.looksLikeTorch(w) ? try TorchNames.toKeras(w) : w
    }
}
