import VGGTLTensors

/// `--unfreeze none|STAGE|all|N` and `--freeze-first N`: which layers train.
public enum UnfreezeSpec: Equatable, Codable, Sendable, CustomStringConvertible {
    /// The trunk is frozen; only head layers train (transfer learning).
    case none
    /// VGG16 blocks k...5 and the head train (fine-tuning the last blocks).
    case fromBlock(Int)
    /// A stage of the backbone (conv5, mixed9, ...), every later stage and the head train.
    case fromStage(String)
    /// Everything trains.
    case all
    /// The last N layers with weights (in Keras' order) train.
    case lastLayers(Int)
    /// Keras' `for layer in model.layers[:N]: layer.trainable = False`: the first N entries of
    /// Keras' layer list (the InputLayer counts) are frozen, the rest train.
    case freezeFirst(Int)

    public init(parsing text: String) throws {
        let t = text.lowercased()
        if t == "none" { self = .none; return }
        if t == "all" { self = .all; return }
        if t.hasPrefix("block"), let k = Int(t.dropFirst(5)), (1...5).contains(k) { self = .fromBlock(k); return }
        if Backbones.allStages.contains(t) { self = .fromStage(t); return }
        if t.hasPrefix("freeze-first:"), let n = Int(t.dropFirst(13)), n >= 0 { self = .freezeFirst(n); return }
        if let n = Int(t), n >= 0 { self = .lastLayers(n); return }
        throw VGGTLError.invalidSetting(.unfreeze, value: text,
                                        expected: "none, all, a stage (\(Self.stagesByFamily)) or a number of layers N >= 0")
    }

    /// "block1...block5 for VGG16, conv1...conv5 for ResNet50, stem or mixed0...mixed10 for InceptionV3".
    public static var stagesByFamily: String {
        Backbones.families.map { "\(stageSpan($0.stages)) for \($0.family.title)" }.joined(separator: ", ")
    }

    /// Stage names with numbered runs shortened: "block1...block5", "stem or mixed0...mixed10".
    static func stageSpan(_ stages: [String]) -> String {
        func numbered(_ s: String) -> (base: Substring, n: Int)? {
            let digits = s.reversed().prefix { $0.isNumber }.count
            guard digits > 0, let n = Int(s.suffix(digits)) else { return nil }
            return (s.dropLast(digits), n)
        }
        var runs: [[String]] = []
        for s in stages {
            if let last = runs.last?.last, let a = numbered(last), let b = numbered(s), a.base == b.base, b.n == a.n + 1 {
                runs[runs.count - 1].append(s)
            } else {
                runs.append([s])
            }
        }
        return runs.map { $0.count > 1 ? "\($0.first!)...\($0.last!)" : $0[0] }.joined(separator: " or ")
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .all: return "all"
        case .fromBlock(let k): return "block\(k)"
        case .fromStage(let s): return s
        case .lastLayers(let n): return "\(n)"
        case .freezeFirst(let n): return "freeze-first:\(n)"
        }
    }

    /// The stage this spec unfreezes from, if it names one.
    var stage: String? {
        switch self {
        case .fromBlock(let k): return "block\(k)"
        case .fromStage(let s): return s
        default: return nil
        }
    }
}

extension Model {
    /// Throws when the spec does not fit this model (a stage it lacks, more layers than it has).
    public func check(_ spec: UnfreezeSpec) throws {
        if let stage = spec.stage {
            let stages = backbone?.stages ?? []
            guard stages.contains(stage) else {
                throw VGGTLError.invalidSetting(.unfreeze, value: stage, expected: stages.isEmpty ? "none or all (the model has no trunk)"
                                                : "a stage of \(backbone!.title): \(stages.joined(separator: ", "))")
            }
        }
        if case .freezeFirst(let n) = spec, n > kerasLayers.count {
            throw VGGTLError.invalidSetting(.freezeFirst, value: "\(n)", expected: "at most \(kerasLayers.count) (the model's layers, as Keras counts them)")
        }
    }

    /// Sets every layer's trainable flag. Frozen layers compute no weight gradients, and
    /// frozen BatchNorm layers run in inference mode.
    public func apply(_ spec: UnfreezeSpec) {
        let keras = kerasLayers
        let weighted = keras.compactMap(\.layer).filter { !$0.parameters.isEmpty }
        let stages = backbone?.stages ?? []
        let from = spec.stage.flatMap { stages.firstIndex(of: $0) } ?? stages.count
        for (i, entry) in keras.enumerated() {
            guard let layer = entry.layer, !layer.parameters.isEmpty else { continue }
            let stage = self.stage(of: layer).flatMap { stages.firstIndex(of: $0) }
            switch spec {
            case .none: layer.trainable = stage == nil
            case .all: layer.trainable = true
            case .fromBlock, .fromStage: layer.trainable = stage.map { $0 >= from } ?? true
            case .lastLayers(let n): layer.trainable = weighted.firstIndex { $0 === layer }! >= weighted.count - n
            case .freezeFirst(let n): layer.trainable = i >= n
            }
        }
    }
}
