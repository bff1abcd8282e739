/// `--unfreeze none|block5|block4|...|block1|all|N`: which layers train.
public enum UnfreezeSpec: Equatable, Codable, Sendable, CustomStringConvertible {
    /// The trunk is frozen; only head layers train (transfer learning).
    case none
    /// Blocks k...5 and the head train (fine-tuning the last blocks).
    case fromBlock(Int)
    /// Everything trains.
    case all
    /// The last N layers with weights train.
    case lastLayers(Int)

    public init(parsing text: String) throws {
        let t = text.lowercased()
        if t == "none" { self = .none; return }
        if t == "all" { self = .all; return }
        if t.hasPrefix("block"), let k = Int(t.dropFirst(5)), (1...5).contains(k) { self = .fromBlock(k); return }
        if let n = Int(t), n >= 0 { self = .lastLayers(n); return }
        throw VGGTLError.badFlag(flag: "--unfreeze", value: text, expected: "none, block5, block4, block3, block2, block1, all, or a number of layers N >= 0")
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .all: return "all"
        case .fromBlock(let k): return "block\(k)"
        case .lastLayers(let n): return "\(n)"
        }
    }
}

extension Model {
    /// Sets every layer's trainable flag. Frozen layers compute no weight gradients, and
    /// frozen BatchNorm layers run in inference mode.
    public func apply(_ spec: UnfreezeSpec) {
        let weighted = weightedLayers
        for (i, layer) in weighted.enumerated() {
            let block = VGG16.block(of: layer.name)
            switch spec {
            case .none: layer.trainable = block == nil
            case .all: layer.trainable = true
            case .fromBlock(let k): layer.trainable = block.map { $0 >= k } ?? true
            case .lastLayers(let n): layer.trainable = i >= weighted.count - n
            }
        }
    }
}
