import ArgumentParser
import Foundation
import VGGTL

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
/// training images per class, are learnt three ways and tested on their 5,000 test images:
/// (a) bottleneck features of the frozen source trunk + a small head, (b) fine-tuning block5 +
/// head, (c) the same network from scratch.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The built-in transfer-learning demo on Fashion-MNIST (about 10 minutes on 2 CPU cores).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Fashion-MNIST IDX folder.") var data = "/usr/share/datasets/fashion-mnist"
    @Option(help: "Output folder (runs, curves, results).") var out = "runs/demo"
    @Option(help: "Source-task training images (classes 0-4).") var sourceImages = 6000
    @Option(help: "Source-task epochs.") var sourceEpochs = 2
    @Option(help: "Target-task training images per class (classes 5-9).") var perClass = 100
    @Option(help: "Epochs for the head on features (a).") var headEpochs = 40
    @Option(help: "Epochs for fine-tuning (b).") var finetuneEpochs = 6
    @Option(help: "Epochs from scratch (c).") var scratchEpochs = 12
    @Option(help: "Batch size.") var batch = 32

    func run() throws {
        try checkWritable(out, flag: "--out")
        let outDir = URL(fileURLWithPath: out)
        let device = try global.openDevice()
        let t0 = Date()
        let (train, test) = try IDX.loadFashionMNIST(directory: URL(fileURLWithPath: data))
        let names = train.classNames
        let input = InputSpec(height: 32, width: 32, preprocessing: .rescale)
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
        let targetTest = RelabeledSource(test, indices: (0..<test.count).filter { test.label($0) >= 5 }, labelMap: targetMap, classNames: targetNames)
        print("source task: \(source.count) images of \(source.classNames.joined(separator: ", "))")
        print("target task: \(targetTrain.count) training images (\(perClass) per class) and \(targetTest.count) test images of \(targetNames.joined(separator: ", "))")

        func loader(_ s: ImageSource, shuffle: Bool, batch: Int? = nil) -> BatchLoader {
            BatchLoader(source: s, batchSize: batch ?? self.batch, input: input, shuffle: shuffle, seed: global.seed)
        }
        func config(_ trunk: ModelConfig.Trunk, shape: [Int]) -> ModelConfig {
            ModelConfig(trunk: trunk, inputShape: shape, headPooling: .flatten, headHidden: 256, headDropout: 0.5, classes: 5)
        }
        func fit(_ name: String, _ model: Model, _ opt: OptimizerSpec, train: BatchProvider, epochs: Int) throws -> (History, Double) {
            print("\n== \(name): \(opt.summary), \(epochs) epochs")
            let t = Date()
            let trainer = Trainer(model: model, optimizer: opt.make())
            let h = try trainer.fit(train: train, validation: nil, epochs: epochs)
            try writeAtomically(Data(historySVG(h, title: name).utf8), to: outDir.appendingPathComponent("\(slug(name)).svg"))
            try writeAtomically(Data(h.csv.utf8), to: outDir.appendingPathComponent("\(slug(name)).csv"))
            return (h, Date().timeIntervalSince(t))
        }
        func accuracy(_ model: Model, _ provider: BatchProvider) throws -> Double {
            try Trainer(model: model, optimizer: SGD(learningRate: 1)).evaluate(provider).metrics.accuracy
        }

        // 1. The source model.
        let sourceModel = try Model(config(.vgg16BN, shape: [32, 32, 3]), on: device, seed: global.seed)
        let (_, sourceTime) = try fit("source VGG16-BN on classes 0-4", sourceModel,
                                      try OptimizerSpec(kind: .adam, learningRate: 1e-3), train: loader(source, shuffle: true), epochs: sourceEpochs)
        let sourceTest = RelabeledSource(test, indices: Array((0..<test.count).filter { test.label($0) < 5 }.prefix(1000)),
                                         labelMap: Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, $0) }), classNames: Array(names[0..<5]))
        let sourceAccuracy = try accuracy(sourceModel, loader(sourceTest, shuffle: false, batch: 128))
        print(String(format: "source model: %.2f%% on %d test images of classes 0-4", 100 * sourceAccuracy, sourceTest.count))
        let trunkWeights = weightSet(of: sourceModel.trunkLayers)

        // (a) Bottleneck features of the frozen source trunk, then a head on them.
        let ta = Date()
        func features(_ s: ImageSource) throws -> ArrayBatches {
            var values: [Float] = [], labels: [Int] = []
            var x: Tensor?
            for b in loader(s, shuffle: false, batch: 128).batches(epoch: 0) where b.count > 0 {
                if x?.shape.first != b.count { x = try Tensor(uninitialized: [b.count, 32, 32, 3], on: device) }
                b.x.withUnsafeBufferPointer { device.write($0, to: x!.buffer, offset: 0) }
                values += try sourceModel.network.forward(x!, training: false, upTo: sourceModel.trunkOutput).toArray()
                labels += b.labels.map { Int($0) }
            }
            return try ArrayBatches(values: values, sampleShape: [1, 1, 512], labels: labels, batchSize: batch, shuffle: true, seed: global.seed)
        }
        let trainFeatures = try features(targetTrain), testFeatures = try features(targetTest)
        let headModel = try Model(config(.none, shape: [1, 1, 512]), on: device, seed: global.seed)
        _ = try fit("(a) bottleneck features + head", headModel, try OptimizerSpec(kind: .adam, learningRate: 1e-3), train: trainFeatures, epochs: headEpochs)
        let accA = try accuracy(headModel, try ArrayBatches(values: testFeatures.values, sampleShape: [1, 1, 512], labels: testFeatures.labels,
                                                        batchSize: 256, shuffle: false, seed: 0))
        let timeA = Date().timeIntervalSince(ta)

        // (b) Fine-tune block5 + head, starting from the source trunk and the head of (a), as the tutorials do.
        let tb = Date()
        var fineConfig = config(.vgg16BN, shape: [32, 32, 3])
        fineConfig.frozenBatchNormStatistics = true  // as Keras advises for fine-tuning
        let fine = try Model(fineConfig, on: device, seed: global.seed)
        try loadWeights(trunkWeights, into: fine.layers, skipMissing: true)
        try loadWeights(weightSet(of: headModel.layers), into: fine.headLayers)
        fine.apply(.fromBlock(5))
        _ = try fit("(b) fine-tune block5 + head", fine, try OptimizerSpec(kind: .sgd, learningRate: 1e-2, momentum: 0.9),
                    train: loader(targetTrain, shuffle: true), epochs: finetuneEpochs)
        let accB = try accuracy(fine, loader(targetTest, shuffle: false, batch: 128))
        let timeB = Date().timeIntervalSince(tb)

        // (c) The same network from scratch on the few target images.
        let tc = Date()
        let scratch = try Model(config(.vgg16BN, shape: [32, 32, 3]), on: device, seed: global.seed &+ 1)
        _ = try fit("(c) from scratch", scratch, try OptimizerSpec(kind: .adam, learningRate: 1e-3), train: loader(targetTrain, shuffle: true), epochs: scratchEpochs)
        let accC = try accuracy(scratch, loader(targetTest, shuffle: false, batch: 128))
        let timeC = Date().timeIntervalSince(tc)

        let total = Date().timeIntervalSince(t0)
        var table = """
        Fashion-MNIST transfer: source VGG16-BN trained on \(source.count) images of classes 0-4 (\(sourceEpochs) epochs, \(String(format: "%.0f", sourceTime)) s,
        \(String(format: "%.2f%%", 100 * sourceAccuracy)) on \(sourceTest.count) of its test images);
        target classes 5-9 with \(perClass) training images per class, tested on \(targetTest.count) test images.

        | method | test accuracy | time (s) |
        | --- | --- | --- |

        """
        for (name, acc, time) in [("(a) bottleneck features + head", accA, timeA), ("(b) fine-tune block5 + head", accB, timeB), ("(c) same network from scratch", accC, timeC)] {
            table += "| \(name) | \(String(format: "%.2f%%", 100 * acc)) | \(String(format: "%.0f", time)) |\n"
        }
        table += "\ntotal \(String(format: "%.0f", total)) s on \(device.name)\n"
        print("\n" + table)
        try writeAtomically(Data(table.utf8), to: outDir.appendingPathComponent("results.md"))
        print("curves and histories: \(out)/*.svg, *.csv; table: \(out)/results.md")
    }

    func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }).split(separator: "-").joined(separator: "-")
    }
}
