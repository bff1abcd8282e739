import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels

/// The main job on real data (`vggtl demo`): a real transfer on Fashion-MNIST (Debian's
/// dataset-fashion-mnist). A source model (VGG16-BN by default) learns classes 0-4 at 32x32;
/// then classes 5-9, with only a few training images per class, are learnt three ways
/// (`TransferComparison`): (a) bottleneck features of the frozen source trunk + a small head,
/// (b) fine-tuning the last stage + head, (c) the same network from scratch. Each method runs
/// with several seeds (initialisation, shuffling, dropout) on the one source model, and is
/// judged as the InceptionV3 transfer tutorial judges: jump start (test accuracy after epoch
/// 1), final accuracy, and training time to a target accuracy.
public struct TransferDemo {
    /// Fashion-MNIST's IDX folder.
    public var data: URL
    /// Each run's curves and history go here.
    public var outDir: URL
    /// Source-task training images (classes 0-4) and epochs.
    public var sourceImages = 5000, sourceEpochs = 2
    /// Target-task training images per class (classes 5-9).
    public var perClass = 100
    public var seeds = 3
    /// Epochs of (a), (b) and (c).
    public var headEpochs = 30, finetuneEpochs = 5, scratchEpochs = 8
    /// Target test images per class scored after every epoch, and for the final score.
    public var valPerClass = 100, testPerClass = 1000
    /// Target training images per class that choose the restored epoch: Fashion-MNIST's next
    /// training images of each class after the `perClass` trained on. Taken beside the training
    /// images rather than out of them, so every method still trains on `perClass` per class, as
    /// the tutorial's experiment and the earlier tables do; never the test images.
    public var selectPerClass = 50
    /// Each run also scores its epoch with the lowest loss on the selection images (restored).
    public var restoreBest = true
    /// Precise BatchNorm at each epoch's end; nil: off.
    public var batchNormRecalibration: BatchNormRecalibration? = BatchNormRecalibration()
    /// Lines that say which machine ran it (the CPU, its BLAS kernels), for the results.
    public var machine: [String] = []
    /// Accuracies that "time to target" waits for.
    public var targets: [Double] = [0.6, 0.85]
    public var batch = 32
    public var trunk = ModelConfig.Trunk.vgg16BN
    /// The input side (the 28x28 images are resized to it); nil: 32, or the backbone's minimum.
    public var side: Int?
    /// The first seed (initialisation, sampling); the methods use seed, seed+1, ...
    public var seed: UInt64 = 1

    public init(data: URL, outDir: URL) {
        self.data = data; self.outDir = outDir
    }

    /// Runs the demo on `device` and returns the results as Markdown (results.md's text).
    public func run(on device: Device) throws -> String {
        let t0 = Date()
        let (train, test) = try IDX.loadFashionMNIST(directory: data)
        let names = train.classNames
        let backbone = trunk.backbone ?? Backbones.default
        let side = self.side ?? max(32, backbone.minimumSize)
        guard side >= backbone.minimumSize else {
            throw VGGTLError.invalidSetting(.inputSize, value: "\(side)", expected: "at least \(backbone.minimumSize) pixels for \(backbone.title)")
        }
        let input = InputSpec(height: side, width: side, preprocessing: .rescale)
        print("device: \(device.name)")

        // Source task: classes 0-4, a seeded sample of the training set.
        var rng = SeededGenerator(seed: seed)
        let sourcePool = (0..<train.count).filter { train.label($0) < 5 }.shuffled(using: &rng)
        let identity = Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, $0) })
        let source = RelabeledSource(train, indices: Array(sourcePool.prefix(sourceImages)), labelMap: identity, classNames: Array(names[0..<5]))
        // Target task: classes 5-9 relabelled 0-4; the first `perClass` training images of each; all test images.
        let targetMap = Dictionary(uniqueKeysWithValues: (5..<10).map { ($0, $0 - 5) })
        let targetNames = Array(names[5..<10])
        // The first `perClass` images of each class train, the next `selectPerClass` choose the epoch.
        let targetTrain = RelabeledSource(train, indices: Self.firstPerClass(train, count: perClass + selectPerClass) { $0 >= 5 },
                                          labelMap: targetMap, classNames: targetNames)
        var perTrain: [Int: Int] = [:]
        let (trainPositions, selectPositions) = (0..<targetTrain.count).reduce(into: ([Int](), [Int]())) { r, k in
            let l = targetTrain.label(k)
            perTrain[l, default: 0] += 1
            if perTrain[l]! <= perClass { r.0.append(k) } else { r.1.append(k) }
        }
        let testIdx = Self.firstPerClass(test, count: testPerClass) { $0 >= 5 }
        let targetTest = RelabeledSource(test, indices: testIdx, labelMap: targetMap, classNames: targetNames)
        // The per-epoch score: the first `valPerClass` test images of each class.
        var perVal: [Int: Int] = [:]
        let valPositions = testIdx.indices.filter { k in
            let l = test.label(testIdx[k])
            perVal[l, default: 0] += 1
            return perVal[l]! <= valPerClass
        }
        print("source task: \(source.count) images of \(source.classNames.joined(separator: ", "))")
        print("target task: \(trainPositions.count) training images (\(perClass) per class) and \(targetTest.count) test images of \(targetNames.joined(separator: ", ")); "
              + "\(valPositions.count) of them scored after every epoch; \(selectPositions.count) other training images (\(selectPerClass) per class) "
              + "choose the restored epoch; \(seeds) seeds per method")

        func loader(_ s: ImageSource, shuffle: Bool, seed: UInt64, batch: Int? = nil) -> BatchLoader {
            BatchLoader(source: s, batchSize: batch ?? self.batch, input: input, shuffle: shuffle, seed: seed)
        }
        let config = ModelConfig(trunk: trunk, inputShape: [side, side, 3], headPooling: backbone.defaultPooling, headHidden: 256, headDropout: 0.5, classes: 5)

        // 1. The source model (one, shared by every seed of the methods).
        let sourceModel = try Model(config, on: device, seed: seed)
        let ts = Date()
        print("\n== source \(backbone.title) on classes 0-4: Adam(lr=0.001), \(sourceEpochs) epochs")
        try Trainer(model: sourceModel, optimizer: Adam(learningRate: 1e-3))
            .fit(train: loader(source, shuffle: true, seed: seed), validation: nil, epochs: sourceEpochs)
        let sourceTime = Date().timeIntervalSince(ts)
        let sourceTest = RelabeledSource(test, indices: Array((0..<test.count).filter { test.label($0) < 5 }.prefix(min(1000, 5 * testPerClass))),
                                         labelMap: identity, classNames: Array(names[0..<5]))
        let sourceAccuracy = try Trainer(model: sourceModel, optimizer: SGD(learningRate: 1))
            .evaluate(loader(sourceTest, shuffle: false, seed: 0, batch: 128)).metrics.accuracy
        print(String(format: "source model: %.2f%% on %d test images of classes 0-4", 100 * sourceAccuracy, sourceTest.count))

        // 2. The three methods on the target task, from the source trunk.
        var comparison = TransferComparison(
            device: device, input: input, config: config, trunkWeights: weightSet(of: sourceModel.trunkLayers),
            train: targetTrain, trainIndices: trainPositions, test: targetTest, testIndices: Array(0..<targetTest.count),
            scored: valPositions, batch: batch, augmentation: nil, unfreeze: backbone.defaultUnfreeze,
            epochs: (headEpochs, finetuneEpochs, scratchEpochs),
            optimizers: (try OptimizerSpec(kind: .adam, learningRate: 1e-3), try OptimizerSpec(kind: .sgd, learningRate: 1e-2, momentum: 0.9),
                         try OptimizerSpec(kind: .adam, learningRate: 1e-3)),
            seeds: (0..<seeds).map { seed &+ UInt64($0) }, outDir: outDir, evalBatch: 128)
        (comparison.selectionIndices, comparison.restoreBest) = (selectPositions, restoreBest)
        comparison.batchNormRecalibration = batchNormRecalibration
        let result = try comparison.run()

        let total = Date().timeIntervalSince(t0)
        let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
        let text = """
        # vggtl demo: transfer learning on Fashion-MNIST

        Source: \(backbone.title) at \(side)x\(side) trained on \(source.count) images of classes 0-4 (\(sourceEpochs) epochs, \(String(format: "%.0f", sourceTime)) s, \(String(format: "%.2f%%", 100 * sourceAccuracy)) on \(sourceTest.count) of its test images), one model shared by all seeds.
        Target: classes 5-9 with \(perClass) training images per class\(selectPerClass > 0 ? ", and the next \(selectPerClass) training images per class of Fashion-MNIST as the selection split (taken beside the training images, so every method trains on \(perClass) per class)" : "").
        \(comparison.legend(result))

        \(comparison.table(result, targets: targets))
        Total \(String(format: "%.0f", total)) s on \(device.name), \(date).
        \(machine.map { "\n" + $0 }.joined())

        """
        return text
    }

    /// The first `count` images of each class that `keep` accepts, in order.
    static func firstPerClass(_ s: ImageSource, count: Int, keep: (Int) -> Bool) -> [Int] {
        var seen: [Int: Int] = [:]
        return (0..<s.count).filter { i in
            let l = s.label(i)
            guard keep(l), seen[l, default: 0] < count else { return false }
            seen[l, default: 0] += 1
            return true
        }
    }
}
