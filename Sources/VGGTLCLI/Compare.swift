import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain
import VGGTLIO

/// The InceptionV3 transfer tutorial's experiment on the user's class folders: a few training
/// images per class learnt three ways (features + head, fine-tuning, from scratch), each over
/// several seeds, judged by jump start, final accuracy and time to a target accuracy.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare features + head, fine-tuning and training from scratch on class folders (jump start, final accuracy, time to a target; several seeds).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var backbone: ModelOptions<CompareDefaults>
    @OptionGroup var weights: WeightsOptions
    @OptionGroup var images: DataOptions<CompareDefaults>
    @Option(help: "Training images per class, a seeded sample (the tutorial's 100). (default: all)") var perClass: Int?
    @Option(help: "Test images per class scored after every epoch (jump start, time to target); the final score uses all. (default: all)") var scoredPerClass: Int?
    @Option(help: "Seeds per method (--seed, --seed+1, ...).") var seeds = 3
    @Option(help: "Epochs of (a), the head on features.") var headEpochs = 20
    @Option(help: "Epochs of (b), fine-tuning.") var finetuneEpochs = 10
    @Option(help: "Epochs of (c), from scratch.") var scratchEpochs = 20
    @Option(help: "Learning rate of (a): RMSprop, as the tutorials' top model.") var headLr: Float = 1e-3
    @Option(help: "Learning rate of (b): SGD with momentum 0.9, as the tutorials' fine-tuning.") var finetuneLr: Float = 1e-4
    @Option(help: "Learning rate of (c): Adam.") var scratchLr: Float = 1e-3
    @Option(help: "What (b) trains: a stage and the stages after it, all, or N (last N layers with weights). (default: \(BackboneHelp.defaultUnfreeze))") var unfreeze: String?
    @Option(help: "(b) freezes the first N layers as Keras counts model.layers instead. (default: none)") var freezeFirst: Int?
    @Option(help: "An accuracy that 'time to target' waits for (repeat for several).") var target: [Double] = [0.9]
    @Option(help: "Batch size.") var batch = 16
    @Option(help: "Output folder: results.md, per-run history CSVs and curves (SVG).") var out = "runs/compare"
    @Option(help: "Fraction of each class's training images held out as the selection split that chooses the restored epoch (at least one image of a class with two or more; never the test images).") var selectSplit = 0.2
    @OptionGroup var selection: SelectionOptions
    @OptionGroup var image: ImageOptions<FinetuneDefaults>
    @OptionGroup var head: HeadOptions
    @OptionGroup var augmentation: AugmentOptions

    func validate() throws {
        for (flag, v) in [("--seeds", seeds), ("--head-epochs", headEpochs), ("--finetune-epochs", finetuneEpochs),
                          ("--scratch-epochs", scratchEpochs), ("--batch", batch), ("--per-class", perClass ?? 1),
                          ("--scored-per-class", scoredPerClass ?? 1)] where v < 1 {
            throw VGGTLError.badFlag(flag: flag, value: "\(v)", expected: "at least 1")
        }
        for (flag, lr) in [("--head-lr", headLr), ("--finetune-lr", finetuneLr), ("--scratch-lr", scratchLr)] where !(lr > 0 && lr.isFinite) {
            throw VGGTLError.badFlag(flag: flag, value: "\(lr)", expected: "a positive number such as 1e-4")
        }
        guard selectSplit > 0, selectSplit < 1 else { throw VGGTLError.badFlag(flag: "--select-split", value: "\(selectSplit)", expected: "a fraction in (0, 1) such as 0.2") }
        for t in target where !(t > 0 && t <= 1) { throw VGGTLError.badFlag(flag: "--target", value: "\(t)", expected: "an accuracy in (0, 1]") }
        try checkWritable(out, flag: "--out")
    }

    func run() throws {
        let lock = try takeOutFolder(out)
        defer { lock?.release() }
        let requested = try backbone.trunk()
        let choice = try weights.choice(requested)
        let trunk = try choice.trunk(requested)
        let unfreezeSpec = try parseUnfreeze(unfreeze, freezeFirst: freezeFirst, default: Finetune.defaultUnfreeze(trunk))
        let input = try image.spec(defaultSize: choice.inputSize ?? defaultSize(trunk, vgg: 150), defaultPreprocessing: choice.preprocessing)
        let source = try classFolders(images.data, flag: "--data")
        for w in source.warnings { stderr("warning: \(w)") }
        let split = try validationSplit(source, valDir: images.val, valSplit: images.val == nil ? images.valSplit ?? 0.2 : images.valSplit, seed: global.seed)
        let test = split.val!
        // The selection split comes out of the training images, before --per-class samples
        // them (so that sample keeps its size where the class has enough), and is held out
        // with or without --restore-best, so that both train on the same images.
        let carved = stratifiedSplit(labels: split.train.map(source.label), fraction: selectSplit, seed: global.seed &+ 0x5E1EC7, minimumPerClass: 1)
        let selectionIndices = carved.validation.map { split.train[$0] }
        var trainIndices = carved.train.map { split.train[$0] }
        if selection.restoreBest, selectionIndices.isEmpty {
            throw VGGTLError.invalidArgument("--restore-best chooses the epoch on training images held out from training, but no class has two training images: "
                + "add images, or compare the last epochs with --no-restore-best")
        }
        if let perClass {
            let sample = Self.samplePerClass(trainIndices, labels: source.label, count: perClass, seed: global.seed)
            if sample.short.count > 0 {
                stderr("warning: --per-class \(perClass): only \(sample.short.map { "\(source.classNames[$0.label]) has \($0.count)" }.joined(separator: ", ")) training images")
            }
            trainIndices = sample.indices
        }
        let testIndices = split.valIndices ?? Array(0..<test.count)
        let scored = scoredPerClass.map { Self.samplePerClass(Array(testIndices.indices), labels: { test.label(testIndices[$0]) }, count: $0, seed: 0).indices.sorted() }
            ?? Array(testIndices.indices)
        var config = ModelConfig(trunk: trunk, inputShape: [input.height, input.width, 3], classes: source.classNames.count)
        try head.apply(to: &config)
        let device = try global.openDevice()
        print("device: \(device.name)")
        print(choice.describe(input: input, requested: requested, preprocessFlag: image.preprocess != nil))
        let augment = try augmentation.augmentation()
        if let augment { print("augmentation of (b) and (c): \(augment.summary)") }
        print("training on \(trainIndices.count) images of \(source.classNames.count) classes (\(source.classNames.joined(separator: ", "))); "
              + "\(testIndices.count) test images, \(scored.count) of them scored after every epoch; \(selectionIndices.count) training images held out "
              + "to choose the restored epoch; \(seeds) seeds per method")

        let outDir = URL(fileURLWithPath: out)
        var comparison = TransferComparison(
            device: device, input: input, config: config, trunkWeights: try choice.load(),
            train: source, trainIndices: trainIndices, test: test, testIndices: testIndices, scored: scored,
            batch: batch, augmentation: augment, unfreeze: unfreezeSpec,
            epochs: (headEpochs, finetuneEpochs, scratchEpochs),
            optimizers: (try OptimizerSpec(kind: .rmsprop, learningRate: headLr),
                         try OptimizerSpec(kind: .sgd, learningRate: finetuneLr, momentum: 0.9),
                         try OptimizerSpec(kind: .adam, learningRate: scratchLr)),
            seeds: (0..<seeds).map { global.seed &+ UInt64($0) }, outDir: outDir)
        comparison.onSkippedImages = { FlagWording.report(.skippedImages(newly: $0, total: $1)) }
        (comparison.selectionIndices, comparison.restoreBest) = (selectionIndices, selection.restoreBest)
        comparison.batchNormRecalibration = selection.batchNormRecalibration
        let t0 = Date()
        let result = try comparison.run()
        let text = """
        # vggtl compare: \(trunk.backbone?.title ?? trunk.rawValue) on \(images.data)

        Weights: \(choice.name); input \(input.height)x\(input.width), preprocessing \(input.preprocessing.rawValue); head \(config.headPooling.rawValue), \(config.headHidden) hidden, dropout \(config.headDropout).
        Training: \(trainIndices.count) images of \(source.classNames.count) classes\(perClass.map { " (\($0) per class)" } ?? ""); \
        (a) \(comparison.optimizers.features.summary), (b) \(comparison.optimizers.finetune.summary) training \(unfreezeSpec), (c) \(comparison.optimizers.scratch.summary).
        \(comparison.legend(result))

        \(comparison.table(result, targets: target))
        Total \(String(format: "%.0f", Date().timeIntervalSince(t0))) s on \(device.name), \(ISO8601DateFormatter().string(from: Date()).prefix(10)).
        \(machineLines(global).joined(separator: "\n"))

        """
        print("\n" + text)
        try writeAtomically(Data(text.utf8), to: outDir.appendingPathComponent("results.md"))
        print("curves and histories: \(out)/*.svg, *.csv; table: \(out)/results.md")
    }

    /// A seeded sample of at most `count` of `indices` per class, in their order; `short`: the
    /// classes with fewer.
    static func samplePerClass(_ indices: [Int], labels: (Int) -> Int, count: Int, seed: UInt64) -> (indices: [Int], short: [(label: Int, count: Int)]) {
        var rng = SeededGenerator(seed: seed)
        var byClass: [Int: [Int]] = [:]
        for i in indices { byClass[labels(i), default: []].append(i) }
        var out: [Int] = [], short: [(Int, Int)] = []
        for label in byClass.keys.sorted() {
            let all = byClass[label]!
            if all.count < count { short.append((label, all.count)) }
            out += all.shuffled(using: &rng).prefix(count)
        }
        return (out.sorted(), short)
    }
}
