import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain

/// Images of a base source, re-indexed and relabelled (a class subset as a new task).
final class RelabeledSource: ImageSource, @unchecked Sendable {
    let base: ImageSource
    let indices: [Int]
    let labels: [Int]
    let classNames: [String]
    init(_ base: ImageSource, indices: [Int], labelMap: [Int: Int], classNames: [String]) {
        self.base = base; self.indices = indices; self.classNames = classNames
        labels = indices.map { labelMap[base.label($0)]! }
    }
    var count: Int { indices.count }
    func label(_ i: Int) -> Int { labels[i] }
    func name(_ i: Int) -> String { base.name(indices[i]) }
    func image(_ i: Int) throws -> RGBImage { try base.image(indices[i]) }
}

/// The main job on real data: a real transfer on Fashion-MNIST (Debian's dataset-fashion-mnist).
/// A VGG16-BN source model learns classes 0-4 at 32x32; then classes 5-9, with only a few
/// training images per class, are learnt three ways: (a) bottleneck features of the frozen
/// source trunk + a small head, (b) fine-tuning block5 + head, (c) the same network from
/// scratch. Each method runs with several seeds (initialisation, shuffling, dropout) on the one
/// source model, and is judged as the InceptionV3 transfer tutorial judges: jump start (test
/// accuracy after epoch 1), final accuracy, and training time to a target accuracy.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The built-in transfer-learning demo on Fashion-MNIST: three methods, several seeds (within 10 minutes on 2 CPU cores).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Fashion-MNIST IDX folder.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Output folder (runs, curves, results).") var out = "runs/demo"
    @Option(help: "Source-task training images (classes 0-4).") var sourceImages = 5000
    @Option(help: "Source-task epochs.") var sourceEpochs = 2
    @Option(help: "Target-task training images per class (classes 5-9).") var perClass = 100
    @Option(help: "Seeds per method (--seed, --seed+1, ...).") var seeds = 3
    @Option(help: "Epochs for the head on features (a).") var headEpochs = 30
    @Option(help: "Epochs for fine-tuning (b).") var finetuneEpochs = 5
    @Option(help: "Epochs from scratch (c).") var scratchEpochs = 8
    @Option(help: "Target test images per class scored after every epoch (jump start, time to target); the final score uses all.") var valPerClass = 100
    @Option(help: "Target test images per class for the final score (Fashion-MNIST has 1,000).") var testPerClass = 1000
    @Option(help: "An accuracy that 'time to target' waits for (repeat for several).") var target: [Double] = [0.6, 0.85]
    @Option(help: "Batch size.") var batch = 32
    @Option(help: "The backbone of the source model: \(BackboneHelp.models).") var model = "vgg16-bn"
    @Option(help: "Input side in pixels (the 28x28 images are resized to it). (default: 32; InceptionV3: 75, its minimum)") var size: Int?

    func validate() throws {
        for (flag, v) in [("--source-images", sourceImages), ("--source-epochs", sourceEpochs), ("--per-class", perClass), ("--seeds", seeds),
                          ("--head-epochs", headEpochs), ("--finetune-epochs", finetuneEpochs), ("--scratch-epochs", scratchEpochs),
                          ("--val-per-class", valPerClass), ("--test-per-class", testPerClass), ("--batch", batch)] where v < 1 {
            throw VGGTLError.badFlag(flag: flag, value: "\(v)", expected: "at least 1")
        }
        for t in target where !(t > 0 && t <= 1) { throw VGGTLError.badFlag(flag: "--target", value: "\(t)", expected: "an accuracy in (0, 1]") }
    }

    func run() throws {
        try checkWritable(out, flag: "--out")
        let outDir = URL(fileURLWithPath: out)
        let device = try global.openDevice()
        let t0 = Date()
        let (train, test) = try IDX.loadFashionMNIST(directory: URL(fileURLWithPath: data))
        let names = train.classNames
        let trunk = try parseTrunk(model)
        let backbone = trunk.backbone!
        let side = size ?? max(32, backbone.minimumSize)
        guard side >= backbone.minimumSize else {
            throw VGGTLError.badFlag(flag: "--size", value: "\(side)", expected: "at least \(backbone.minimumSize) pixels for \(backbone.title)")
        }
        let input = InputSpec(height: side, width: side, preprocessing: .rescale)
        print("device: \(device.name)")

        // Source task: classes 0-4, a seeded sample of the training set.
        var rng = SeededGenerator(seed: global.seed)
        let sourcePool = (0..<train.count).filter { train.label($0) < 5 }.shuffled(using: &rng)
        let source = RelabeledSource(train, indices: Array(sourcePool.prefix(sourceImages)),
                                     labelMap: Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, $0) }), classNames: Array(names[0..<5]))
        // Target task: classes 5-9 relabelled 0-4; the first `perClass` training images of each; all test images.
        let targetMap = Dictionary(uniqueKeysWithValues: (5..<10).map { ($0, $0 - 5) })
        var perLabel: [Int: Int] = [:]
        let targetTrainIdx = (0..<train.count).filter { i in
            let l = train.label(i)
            guard l >= 5, perLabel[l, default: 0] < perClass else { return false }
            perLabel[l, default: 0] += 1
            return true
        }
        let targetNames = Array(names[5..<10])
        let targetTrain = RelabeledSource(train, indices: targetTrainIdx, labelMap: targetMap, classNames: targetNames)
        var perTest: [Int: Int] = [:]
        let testIdx = (0..<test.count).filter { i in
            let l = test.label(i)
            guard l >= 5, perTest[l, default: 0] < testPerClass else { return false }
            perTest[l, default: 0] += 1
            return true
        }
        let targetTest = RelabeledSource(test, indices: testIdx, labelMap: targetMap, classNames: targetNames)
        // The per-epoch score: the first `valPerClass` test images of each class.
        var perVal: [Int: Int] = [:]
        let valPositions = testIdx.indices.filter { k in
            let l = test.label(testIdx[k])
            perVal[l, default: 0] += 1
            return perVal[l]! <= valPerClass
        }
        print("source task: \(source.count) images of \(source.classNames.joined(separator: ", "))")
        print("target task: \(targetTrain.count) training images (\(perClass) per class) and \(targetTest.count) test images of \(targetNames.joined(separator: ", ")); "
              + "\(valPositions.count) of them scored after every epoch; \(seeds) seeds per method")

        func loader(_ s: ImageSource, shuffle: Bool, seed: UInt64, batch: Int? = nil) -> BatchLoader {
            BatchLoader(source: s, batchSize: batch ?? self.batch, input: input, shuffle: shuffle, seed: seed)
        }
        let config = ModelConfig(trunk: trunk, inputShape: [side, side, 3], headPooling: backbone.defaultPooling, headHidden: 256, headDropout: 0.5, classes: 5)

        // 1. The source model (one, shared by every seed of the methods).
        let sourceModel = try Model(config, on: device, seed: global.seed)
        let ts = Date()
        print("\n== source \(backbone.title) on classes 0-4: Adam(lr=0.001), \(sourceEpochs) epochs")
        try Trainer(model: sourceModel, optimizer: Adam(learningRate: 1e-3))
            .fit(train: loader(source, shuffle: true, seed: global.seed), validation: nil, epochs: sourceEpochs)
        let sourceTime = Date().timeIntervalSince(ts)
        let sourceTest = RelabeledSource(test, indices: Array((0..<test.count).filter { test.label($0) < 5 }.prefix(min(1000, 5 * testPerClass))),
                                         labelMap: Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, $0) }), classNames: Array(names[0..<5]))
        let sourceAccuracy = try Trainer(model: sourceModel, optimizer: SGD(learningRate: 1))
            .evaluate(loader(sourceTest, shuffle: false, seed: 0, batch: 128)).metrics.accuracy
        print(String(format: "source model: %.2f%% on %d test images of classes 0-4", 100 * sourceAccuracy, sourceTest.count))

        // 2. The three methods on the target task, from the source trunk.
        let comparison = TransferComparison(
            device: device, input: input, config: config, trunkWeights: weightSet(of: sourceModel.trunkLayers),
            train: targetTrain, trainIndices: Array(0..<targetTrain.count), test: targetTest, testIndices: Array(0..<targetTest.count),
            scored: valPositions, batch: batch, augmentation: nil, unfreeze: Finetune.defaultUnfreeze(trunk),
            epochs: (headEpochs, finetuneEpochs, scratchEpochs),
            optimizers: (try OptimizerSpec(kind: .adam, learningRate: 1e-3), try OptimizerSpec(kind: .sgd, learningRate: 1e-2, momentum: 0.9),
                         try OptimizerSpec(kind: .adam, learningRate: 1e-3)),
            seeds: (0..<seeds).map { global.seed &+ UInt64($0) }, outDir: outDir, evalBatch: 128)
        let result = try comparison.run()

        let total = Date().timeIntervalSince(t0)
        let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
        let text = """
        # vggtl demo: transfer learning on Fashion-MNIST

        Source: \(backbone.title) at \(side)x\(side) trained on \(source.count) images of classes 0-4 (\(sourceEpochs) epochs, \(String(format: "%.0f", sourceTime)) s, \(String(format: "%.2f%%", 100 * sourceAccuracy)) on \(sourceTest.count) of its test images), one model shared by all seeds.
        Target: classes 5-9 with \(perClass) training images per class.
        \(comparison.legend(result))

        \(comparison.table(result, targets: target))
        Total \(String(format: "%.0f", total)) s on \(device.name), \(date).

        """
        print("\n" + text)
        try writeAtomically(Data(text.utf8), to: outDir.appendingPathComponent("results.md"))
        print("curves and histories: \(out)/*.svg, *.csv; table: \(out)/results.md")
    }
}
