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

/// Per-seed results of one method: test accuracy after each epoch on the validation subset,
/// training seconds after each epoch, and the final accuracy on every target test image.
struct MethodRun {
    var perEpoch: [Double] = []
    var secondsAfter: [Double] = []
    var final = 0.0

    /// The epoch (from 1) and training seconds at which the validation accuracy first reached
    /// `target`; nil if it never did.
    func timeTo(_ target: Double) -> (epoch: Int, seconds: Double)? {
        perEpoch.firstIndex { $0 >= target }.map { ($0 + 1, secondsAfter[$0]) }
    }
}

/// "mean ± sd (min-max)" of values, as percentages or seconds.
func spread(_ v: [Double], percent: Bool) -> String {
    guard !v.isEmpty else { return "-" }
    let mean = v.reduce(0, +) / Double(v.count)
    let sd = v.count > 1 ? (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot() : 0
    let k = percent ? 100.0 : 1.0
    let f = percent ? "%.1f" : "%.0f"
    return String(format: "\(f) ± \(f) (\(f)–\(f))", k * mean, k * sd, k * v.min()!, k * v.max()!) + (percent ? "%" : " s")
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

        func loader(_ s: ImageSource, shuffle: Bool, seed: UInt64, batch: Int? = nil, indices: [Int]? = nil) -> BatchLoader {
            BatchLoader(source: s, indices: indices, batchSize: batch ?? self.batch, input: input, shuffle: shuffle, seed: seed)
        }
        func config(_ trunk: ModelConfig.Trunk, shape: [Int]) -> ModelConfig {
            ModelConfig(trunk: trunk, inputShape: shape, headPooling: .flatten, headHidden: 256, headDropout: 0.5, classes: 5)
        }
        func accuracy(_ model: Model, _ provider: BatchProvider) throws -> Double {
            try Trainer(model: model, optimizer: SGD(learningRate: 1)).evaluate(provider).metrics.accuracy
        }
        /// Trains epoch by epoch, scoring `val` after each; training time excludes the scoring.
        func fit(_ name: String, _ model: Model, _ opt: OptimizerSpec, train: BatchProvider, epochs: Int,
                 val: BatchProvider, test: BatchProvider) throws -> MethodRun {
            print("\n== \(name): \(opt.summary), \(epochs) epochs")
            let trainer = Trainer(model: model, optimizer: opt.make())
            var run = MethodRun(), seconds = 0.0
            for epoch in 0..<epochs {
                let t = Date()
                try trainer.fit(train: train, validation: nil, epochs: epoch + 1, startEpoch: epoch)
                seconds += Date().timeIntervalSince(t)
                let acc = try accuracy(model, val)
                trainer.history.records[epoch].valAccuracy = acc
                run.perEpoch.append(acc); run.secondsAfter.append(seconds)
                print(String(format: "test accuracy on %d images after epoch %d: %.2f%%", valPositions.count, epoch + 1, 100 * acc))
            }
            run.final = try accuracy(model, test)
            print(String(format: "final test accuracy on %d images: %.2f%% (%.0f s of training)", targetTest.count, 100 * run.final, seconds))
            try writeAtomically(Data(historySVG(trainer.history, title: name).utf8), to: outDir.appendingPathComponent("\(slug(name)).svg"))
            try writeAtomically(Data(trainer.history.csv.utf8), to: outDir.appendingPathComponent("\(slug(name)).csv"))
            return run
        }

        // 1. The source model (one, shared by every seed of the methods).
        let sourceModel = try Model(config(.vgg16BN, shape: [32, 32, 3]), on: device, seed: global.seed)
        let ts = Date()
        print("\n== source VGG16-BN on classes 0-4: Adam(lr=0.001), \(sourceEpochs) epochs")
        try Trainer(model: sourceModel, optimizer: Adam(learningRate: 1e-3))
            .fit(train: loader(source, shuffle: true, seed: global.seed), validation: nil, epochs: sourceEpochs)
        let sourceTime = Date().timeIntervalSince(ts)
        let sourceTest = RelabeledSource(test, indices: Array((0..<test.count).filter { test.label($0) < 5 }.prefix(min(1000, 5 * testPerClass))),
                                         labelMap: Dictionary(uniqueKeysWithValues: (0..<5).map { ($0, $0) }), classNames: Array(names[0..<5]))
        let sourceAccuracy = try accuracy(sourceModel, loader(sourceTest, shuffle: false, seed: 0, batch: 128))
        print(String(format: "source model: %.2f%% on %d test images of classes 0-4", 100 * sourceAccuracy, sourceTest.count))
        let trunkWeights = weightSet(of: sourceModel.trunkLayers)

        // Bottleneck features of the frozen source trunk: the same for every seed.
        let tf = Date()
        func features(_ s: ImageSource) throws -> (values: [Float], labels: [Int]) {
            var values: [Float] = [], labels: [Int] = []
            var x: Tensor?
            for b in loader(s, shuffle: false, seed: 0, batch: 128).batches(epoch: 0) where b.count > 0 {
                if x?.shape.first != b.count { x = try Tensor(uninitialized: [b.count, 32, 32, 3], on: device) }
                b.x.withUnsafeBufferPointer { device.write($0, to: x!.buffer, offset: 0) }
                values += try sourceModel.network.forward(x!, training: false, upTo: sourceModel.trunkOutput).toArray()
                labels += b.labels.map { Int($0) }
            }
            return (values, labels)
        }
        let trainFeatures = try features(targetTrain), testFeatures = try features(targetTest)
        let featureSeconds = Date().timeIntervalSince(tf)
        let testFeatureBatches = try ArrayBatches(values: testFeatures.values, sampleShape: [1, 1, 512], labels: testFeatures.labels, batchSize: 256, shuffle: false, seed: 0)
        let valFeatureBatches = try testFeatureBatches.subset(valPositions)
        let valImages = loader(targetTest, shuffle: false, seed: 0, batch: 128, indices: valPositions)
        let testImages = loader(targetTest, shuffle: false, seed: 0, batch: 128)

        var runs: [String: [MethodRun]] = [:]
        let methods = ["(a) bottleneck features + head", "(b) fine-tune block5 + head", "(c) same network from scratch"]
        for k in 0..<seeds {
            let seed = global.seed &+ UInt64(k)
            // (a) A head on the features. Its time includes computing the features once.
            let head = try Model(config(.none, shape: [1, 1, 512]), on: device, seed: seed)
            var a = try fit("(a) bottleneck features + head, seed \(seed)", head, try OptimizerSpec(kind: .adam, learningRate: 1e-3),
                            train: try ArrayBatches(values: trainFeatures.values, sampleShape: [1, 1, 512], labels: trainFeatures.labels,
                                                    batchSize: batch, shuffle: true, seed: seed),
                            epochs: headEpochs, val: valFeatureBatches, test: testFeatureBatches)
            a.secondsAfter = a.secondsAfter.map { $0 + featureSeconds }
            runs[methods[0], default: []].append(a)

            // (b) Fine-tune block5 + head, from the source trunk and this seed's head of (a), as the tutorials do.
            var fineConfig = config(.vgg16BN, shape: [32, 32, 3])
            fineConfig.frozenBatchNormStatistics = true  // as Keras advises for fine-tuning
            let fine = try Model(fineConfig, on: device, seed: seed)
            try loadWeights(trunkWeights, into: fine.layers, skipMissing: true)
            try loadWeights(weightSet(of: head.layers), into: fine.headLayers)
            fine.apply(.fromBlock(5))
            runs[methods[1], default: []].append(try fit("(b) fine-tune block5 + head, seed \(seed)", fine,
                                                         try OptimizerSpec(kind: .sgd, learningRate: 1e-2, momentum: 0.9),
                                                         train: loader(targetTrain, shuffle: true, seed: seed), epochs: finetuneEpochs,
                                                         val: valImages, test: testImages))

            // (c) The same network from scratch on the few target images.
            let scratch = try Model(config(.vgg16BN, shape: [32, 32, 3]), on: device, seed: seed &+ 1000)
            runs[methods[2], default: []].append(try fit("(c) from scratch, seed \(seed)", scratch, try OptimizerSpec(kind: .adam, learningRate: 1e-3),
                                                         train: loader(targetTrain, shuffle: true, seed: seed), epochs: scratchEpochs,
                                                         val: valImages, test: testImages))
        }

        let total = Date().timeIntervalSince(t0)
        let targets = target.sorted()
        func percent(_ v: Double) -> String { String(format: "%.0f%%", 100 * v) }
        let date = ISO8601DateFormatter().string(from: Date()).prefix(10)
        var text = """
        # vggtl demo: transfer learning on Fashion-MNIST

        Source: VGG16-BN trained on \(source.count) images of classes 0-4 (\(sourceEpochs) epochs, \(String(format: "%.0f", sourceTime)) s, \(String(format: "%.2f%%", 100 * sourceAccuracy)) on \(sourceTest.count) of its test images), one model shared by all seeds.
        Target: classes 5-9 with \(perClass) training images per class; \(seeds) seeds per method (\(global.seed)...\(global.seed &+ UInt64(seeds - 1)): initialisation, shuffling, dropout).
        Jump start: test accuracy after epoch 1 on \(valPositions.count) test images (\(valPerClass) per class); final: on all \(targetTest.count) test images; time to a target: the epoch and the training seconds at which the per-epoch score first reached it (method (a) includes computing the features, \(String(format: "%.0f", featureSeconds)) s). Values: mean ± standard deviation (min–max) over the seeds.

        | method | jump start (epoch 1) | final accuracy |\(targets.map { " time to \(percent($0)) |" }.joined()) training time |
        | --- | --- | --- |\(String(repeating: " --- |", count: targets.count)) --- |

        """
        for m in methods {
            let r = runs[m] ?? []
            let times = targets.map { t -> String in
                let reached = r.compactMap { $0.timeTo(t) }
                guard let first = reached.map(\.epoch).min(), let last = reached.map(\.epoch).max() else { return "not reached (0/\(r.count) seeds)" }
                return (first == last ? "epoch \(first)" : "epochs \(first)–\(last)") + ", " + spread(reached.map(\.seconds), percent: false)
                    + (reached.count < r.count ? " (\(reached.count)/\(r.count) seeds)" : "")
            }
            text += "| \(m) | \(spread(r.map { $0.perEpoch[0] }, percent: true)) | \(spread(r.map(\.final), percent: true)) |"
                + times.map { " \($0) |" }.joined() + " \(spread(r.map { $0.secondsAfter.last! }, percent: false)) |\n"
        }
        text += "\nPer seed (final accuracy): " + methods.map { m in
            "\(m.prefix(3)) " + (runs[m] ?? []).map { String(format: "%.2f%%", 100 * $0.final) }.joined(separator: ", ")
        }.joined(separator: "; ") + "\n"
        text += "\nTotal \(String(format: "%.0f", total)) s on \(device.name), \(date).\n"
        print("\n" + text)
        try writeAtomically(Data(text.utf8), to: outDir.appendingPathComponent("results.md"))
        print("curves and histories: \(out)/*.svg, *.csv; table: \(out)/results.md")
    }

    func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }).split(separator: "-").joined(separator: "-")
    }
}
