import ArgumentParser
import VGGTL

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print VGG16's layers as Keras' model.summary() does.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Keras' original top (fc1, fc2, predictions) instead of the tutorials' head.") var includeTop = false
    @Flag(help: "The bare trunk, as Keras' VGG16(include_top=False).summary() (14,714,688 parameters at any size).") var noHead = false
    @Flag(help: "BatchNorm after every convolution (VGG16-BN).") var bn = false
    @Option(help: "Input size HxW.") var size = "224x224"
    @Option(help: "Number of classes.") var classes = 1000
    @Option(help: "none | block5 | ... | block1 | all | N (last N layers with weights).") var unfreeze = "all"
    @Option(help: "Head pooling: flatten | gap.") var pooling = "flatten"

    func run() throws {
        let (h, w) = try parseSize(size)
        if noHead {
            guard !includeTop else { throw VGGTLError.invalidArgument("use either --no-head or --include-top, not both") }
            var rng = SeededGenerator(seed: global.seed)
            let trunk = try VGG16.trunk(batchNorm: bn, on: CPUDevice(threads: global.threads), rng: &rng)
            let weighted = trunk.filter { !$0.parameters.isEmpty }
            for (i, layer) in weighted.enumerated() {
                switch try UnfreezeSpec(parsing: unfreeze) {
                case .none: layer.trainable = false
                case .all: layer.trainable = true
                case .fromBlock(let k): layer.trainable = (VGG16.block(of: layer.name) ?? 0) >= k
                case .lastLayers(let n): layer.trainable = i >= weighted.count - n
                }
            }
            let model = Sequential(trunk)
            print(try Model.summary(inputShape: [h, w, 3], layers: model.layers))
            return
        }
        let config = ModelConfig(trunk: bn ? .vgg16BN : .vgg16, inputShape: [h, w, 3], includeTop: includeTop,
                                 headPooling: try parseEnum(pooling, flag: "--pooling"), classes: classes)
        // Weights are allocated to count them: the CPU is always there and needs no kernels.
        let model = try Model(config, on: CPUDevice(threads: global.threads), seed: global.seed)
        model.apply(try UnfreezeSpec(parsing: unfreeze))
        print(try model.summary())
    }
}

/// "150x150" or "150" -> (150, 150).
func parseSize(_ text: String, flag: String = "--size") throws -> (Int, Int) {
    let parts = text.lowercased().split(separator: "x").map { Int($0) }
    let bad = VGGTLError.badFlag(flag: flag, value: text, expected: "HxW like 150x150 (each at least 32)")
    guard (1...2).contains(parts.count), parts.allSatisfy({ $0 != nil }) else { throw bad }
    let h = parts[0]!, w = parts.count == 2 ? parts[1]! : parts[0]!
    guard h >= 32, w >= 32, h <= 4096, w <= 4096 else { throw bad }
    return (h, w)
}

func parseEnum<T: RawRepresentable & CaseIterable>(_ text: String, flag: String) throws -> T where T.RawValue == String {
    guard let v = T(rawValue: text.lowercased()) else {
        throw VGGTLError.badFlag(flag: flag, value: text, expected: T.allCases.map(\.rawValue).joined(separator: " | "))
    }
    return v
}
