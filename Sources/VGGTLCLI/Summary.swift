import ArgumentParser
import VGGTLTensors
import VGGTLBackends
import VGGTLModels

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a model's layers, numbered as Keras' model.layers, as model.summary() does.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var backbone: ModelOptions<SummaryDefaults>
    @Flag(help: "Keras' original top (VGG16: fc1, fc2, predictions; ResNet50, InceptionV3: avg_pool, predictions) instead of the tutorials' head.") var includeTop = false
    @Flag(help: "The bare trunk, as Keras' VGG16(include_top=False).summary() prints it (VGG16: 14,714,688 parameters at any size).") var noHead = false
    @Flag(help: "BatchNorm after every convolution (VGG16-BN; same as --model vgg16-bn).") var bn = false
    @Option(help: "Input size HxW (default: the backbone's, 224 or 299).") var size: String?
    @Option(help: "Number of classes.") var classes = 1000
    @Option(help: "none | a stage (block5, conv5, mixed9, ...) | all | N (last N layers with weights).") var unfreeze: String?
    @Option(help: "Freeze the first N layers as Keras counts model.layers.") var freezeFirst: Int?
    @Option(help: "Head pooling. (default: the backbone's)") var pooling: ModelConfig.Pooling?

    func validate() throws {
        guard classes >= 2 else { throw VGGTLError.badFlag(flag: "--classes", value: "\(classes)", expected: "at least 2") }
    }

    func run() throws {
        if noHead, includeTop { throw VGGTLError.invalidArgument("use either --no-head or --include-top, not both") }
        let trunk = try backbone.trunk(bn: bn)
        let (h, w) = try size.map { try parseSize($0) } ?? defaultSize(trunk, vgg: 224)
        var config = ModelConfig(trunk: trunk, inputShape: [h, w, 3], includeTop: includeTop, classes: classes)
        config.headPooling = pooling ?? trunk.backbone?.defaultPooling ?? .flatten
        let spec = try parseUnfreeze(unfreeze, freezeFirst: freezeFirst, default: .all)
        // Weights are allocated to count them: the CPU is always there and needs no kernels.
        let model = try Model(config, on: DeviceChoice.cpu.open(threads: global.threads, cpu: RunContext.current.knobs.settings.cpu), seed: global.seed)
        try model.check(spec)
        model.apply(spec)
        print(try model.summary(trunkOnly: noHead))
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
