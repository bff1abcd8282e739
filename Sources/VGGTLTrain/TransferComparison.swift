import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels

/// Per-seed results of one method: test accuracy after each epoch on the scored subset,
/// training seconds after each epoch, and the final accuracy on every test image (the last
/// epoch's weights). With a selection split: its loss after each epoch, the epoch chosen by it
/// and the accuracy on every test image with that epoch's weights (restored).
public struct MethodRun: Sendable {
    public var perEpoch: [Double] = []
    public var secondsAfter: [Double] = []
    public var final = 0.0
    public var selectionLoss: [Double] = []
    /// From 1; nil: no epoch was chosen (no selection split, or restoring is off).
    public var bestEpoch: Int?
    public var best: Double?

    /// The epoch (from 1) and training seconds at which the scored accuracy first reached
    /// `target`; nil if it never did.
    public func timeTo(_ target: Double) -> (epoch: Int, seconds: Double)? {
        perEpoch.firstIndex { $0 >= target }.map { ($0 + 1, secondsAfter[$0]) }
    }
}

/// The epoch (from 1) whose validation loss is lowest, ties to the earliest (a later epoch must
/// do strictly better, as Keras' restore_best_weights and best.json choose); epochs whose loss is
/// not a number are never chosen. nil: none has a loss.
public func bestEpoch(validationLosses: [Double]) -> Int? {
    var best: Int?
    for (i, l) in validationLosses.enumerated() where !l.isNaN {
        if best == nil || l < validationLosses[best!] { best = i }
    }
    return best.map { $0 + 1 }
}

/// "mean ± sd (min–max)" of values, as percentages or seconds.
func spread(_ v: [Double], percent: Bool) -> String {
    guard !v.isEmpty else { return "-" }
    let mean = v.reduce(0, +) / Double(v.count)
    let sd = v.count > 1 ? (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot() : 0
    let k = percent ? 100.0 : 1.0
    let f = percent ? "%.1f" : "%.0f"
    return String(format: "\(f) ± \(f) (\(f)–\(f))", k * mean, k * sd, k * v.min()!, k * v.max()!) + (percent ? "%" : " s")
}

/// The InceptionV3 transfer tutorial's comparison of three ways to learn a small target task,
/// each over several seeds: (a) a head on bottleneck features of the frozen pretrained trunk,
/// (b) fine-tuning the trunk's last stages from the pretrained trunk and (a)'s head, (c) the
/// same network from scratch. Judged by jump start (accuracy after epoch 1), final accuracy and
/// training time to target accuracies. `vggtl demo` and `vggtl compare` both run it.
public struct TransferComparison {
    public var device: Device
    public var input: InputSpec
    /// The whole network for the target task (trunk, head, classes); (c) trains it from scratch.
    public var config: ModelConfig
    /// The pretrained trunk; nil: random (then (a) and (b) show what the architecture alone gives).
    public var trunkWeights: WeightSet?
    public var train: ImageSource
    public var trainIndices: [Int]
    /// Test images: `scored` (positions into `testIndices`) after every epoch, all at the end.
    public var test: ImageSource
    public var testIndices: [Int]
    public var scored: [Int]
    public var batch: Int
    /// Applied to the images of (b) and (c); the features of (a) are computed once, unaugmented.
    public var augmentation: Augmentation?
    /// The stages (b) trains.
    public var unfreeze: UnfreezeSpec
    public var epochs: (features: Int, finetune: Int, scratch: Int)
    public var optimizers: (features: OptimizerSpec, finetune: OptimizerSpec, scratch: OptimizerSpec)
    public var seeds: [UInt64]
    public var outDir: URL
    /// Batch size for features and scoring (no gradients: larger than training's fits).
    public var evalBatch = 64
    /// Hears the images an epoch skipped as unreadable (see `Trainer.onSkippedImages`).
    public var onSkippedImages: ((_ newly: Int, _ total: Int) -> Void)?
    /// Training images (indices into `train`, none in `trainIndices`) that choose the epoch
    /// each run ends with: its loss on them after every epoch. Never the test images, so the
    /// test accuracy of the restored epoch is an honest estimate.
    public var selectionIndices: [Int] = []
    /// Each run also scores the weights of its epoch with the lowest selection loss (kept in
    /// memory), as Keras' restore_best_weights; needs `selectionIndices`.
    public var restoreBest = true
    /// Precise BatchNorm at every epoch's end (see `BatchNormRecalibration`); nil: off.
    public var batchNormRecalibration: BatchNormRecalibration? = BatchNormRecalibration()

    public init(device: Device, input: InputSpec, config: ModelConfig, trunkWeights: WeightSet?, train: ImageSource, trainIndices: [Int],
                test: ImageSource, testIndices: [Int], scored: [Int], batch: Int, augmentation: Augmentation?, unfreeze: UnfreezeSpec,
                epochs: (features: Int, finetune: Int, scratch: Int), optimizers: (features: OptimizerSpec, finetune: OptimizerSpec, scratch: OptimizerSpec),
                seeds: [UInt64], outDir: URL, evalBatch: Int = 64) {
        self.device = device; self.input = input; self.config = config; self.trunkWeights = trunkWeights
        self.train = train; self.trainIndices = trainIndices; self.test = test; self.testIndices = testIndices; self.scored = scored
        self.batch = batch; self.augmentation = augmentation; self.unfreeze = unfreeze; self.epochs = epochs; self.optimizers = optimizers
        self.seeds = seeds; self.outDir = outDir; self.evalBatch = evalBatch
    }

    public var methods: [String] {
        ["(a) bottleneck features + head", "(b) fine-tune \(unfreeze) + head", "(c) same network from scratch"]
    }

    public struct Result {
        public var runs: [String: [MethodRun]]
        /// Computing the features once (included in (a)'s times).
        public var featureSeconds: Double
    }

    /// The accuracy of `model` on `provider`'s batches.
    static func accuracy(_ model: Model, _ provider: BatchProvider) throws -> Double {
        try Trainer(model: model, optimizer: SGD(learningRate: 1)).evaluate(provider).metrics.accuracy
    }

    public func run() throws -> Result {
        func loader(_ s: ImageSource, _ indices: [Int], shuffle: Bool, seed: UInt64, batch: Int? = nil, augment: Bool = false) -> BatchLoader {
            BatchLoader(source: s, indices: indices, batchSize: batch ?? self.batch, input: input,
                        augmentation: augment ? augmentation : nil, shuffle: shuffle, seed: seed)
        }
        /// Trains epoch by epoch, scoring `val` (test images) and `selection` (training images
        /// held out) after each; training time excludes the scoring. The epoch with the lowest
        /// selection loss keeps its weights in memory; they are scored on `test` at the end.
        func fit(_ name: String, _ model: Model, _ opt: OptimizerSpec, train: BatchProvider, epochs: Int,
                 val: BatchProvider, selection: BatchProvider?, test: BatchProvider) throws -> MethodRun {
            print("\n== \(name): \(opt.summary), \(epochs) epochs")
            let trainer = Trainer(model: model, optimizer: opt.make())
            trainer.onSkippedImages = onSkippedImages
            trainer.batchNormRecalibration = batchNormRecalibration
            var run = MethodRun(), seconds = 0.0
            var bestWeights: WeightSet?
            // One fit over all epochs (its progress counts to their total); the scoring after
            // each epoch is outside the epoch's time (BatchNorm's recalibration is inside it).
            try trainer.fit(train: train, validation: nil, epochs: epochs) { record in
                seconds += record.seconds
                let acc = try Self.accuracy(model, val)
                run.perEpoch.append(acc); run.secondsAfter.append(seconds)
                print(String(format: "test accuracy on %d images after epoch %d: %.2f%%", self.scored.count, record.epoch, 100 * acc))
                guard let selection else {
                    trainer.history.records[record.epoch - 1].valAccuracy = acc  // the test score, the only one there is
                    return
                }
                let m = try trainer.evaluate(selection).metrics
                trainer.history.records[record.epoch - 1].valLoss = m.meanLoss
                trainer.history.records[record.epoch - 1].valAccuracy = m.accuracy
                run.selectionLoss.append(m.meanLoss)
                print(String(format: "selection split (%d training images): val_loss %.4f, val_acc %.2f%%", self.selectionIndices.count, m.meanLoss, 100 * m.accuracy))
                if restoreBest, bestEpoch(validationLosses: run.selectionLoss) == record.epoch { bestWeights = weightSet(of: model.layers) }
            }
            run.final = try Self.accuracy(model, test)
            print(String(format: "final test accuracy on %d images: %.2f%% (%.0f s of training)", testIndices.count, 100 * run.final, seconds))
            if restoreBest, let bestWeights, let epoch = bestEpoch(validationLosses: run.selectionLoss) {
                try loadWeights(bestWeights, into: model.layers)
                run.bestEpoch = epoch
                run.best = try Self.accuracy(model, test)
                print(String(format: "restored epoch %d (lowest selection loss %.4f): test accuracy on %d images %.2f%%",
                             epoch, run.selectionLoss[epoch - 1], testIndices.count, 100 * run.best!))
            }
            try writeAtomically(Data(historySVG(trainer.history, title: name).utf8), to: outDir.appendingPathComponent("\(slug(name)).svg"))
            try writeAtomically(Data(trainer.history.csv.utf8), to: outDir.appendingPathComponent("\(slug(name)).csv"))
            return run
        }
        func pretrained(_ c: ModelConfig, seed: UInt64) throws -> Model {
            let m = try Model(c, on: device, seed: seed)
            if let trunkWeights { try loadWeights(trunkWeights, into: m.kerasOrderedTrunkLayers) }
            return m
        }

        // Bottleneck features of the frozen trunk: the same for every seed. The trunk model (and
        // its planned buffers) is released once they are computed.
        typealias Features = (values: [Float], labels: [Int], shape: [Int])
        let tf = Date()
        let (trainFeatures, testFeatures, selectionFeatures): (Features, Features, Features) = try {
            let trunk = try pretrained(config, seed: seeds[0])
            func features(_ s: ImageSource, _ indices: [Int]) throws -> Features {
                var values: [Float] = [], labels: [Int] = [], shape: [Int] = []
                var x: Tensor?
                for b in loader(s, indices, shuffle: false, seed: 0, batch: evalBatch).batches(epoch: 0) where b.count > 0 {
                    if x?.shape.first != b.count { x = try Tensor(uninitialized: [b.count, input.height, input.width, 3], on: device) }
                    b.x.withUnsafeBufferPointer { device.write($0, to: x!.buffer, offset: 0) }
                    let y = try trunk.network.forward(x!, .inference, upTo: trunk.trunkOutput)
                    values += y.toArray(); labels += b.labels.map { Int($0) }; shape = Array(y.shape.dropFirst())
                }
                return (values, labels, shape)
            }
            return (try features(train, trainIndices), try features(test, testIndices), try features(train, selectionIndices))
        }()
        let featureSeconds = Date().timeIntervalSince(tf)
        let featureShape = trainFeatures.shape
        print(String(format: "bottleneck features %@ of %d training and %d test images: %.0f s", featureShape.map(String.init).joined(separator: "x"),
                     trainIndices.count, testIndices.count, featureSeconds))
        let testFeatureBatches = try ArrayBatches(values: testFeatures.values, sampleShape: featureShape, labels: testFeatures.labels,
                                                  batchSize: 256, shuffle: false, seed: 0)
        let scoredFeatureBatches = try testFeatureBatches.subset(scored)
        let scoredImages = loader(test, scored.map { testIndices[$0] }, shuffle: false, seed: 0, batch: evalBatch)
        let testImages = loader(test, testIndices, shuffle: false, seed: 0, batch: evalBatch)
        let hasSelection = !selectionIndices.isEmpty
        let selectionFeatureBatches = hasSelection
            ? try ArrayBatches(values: selectionFeatures.values, sampleShape: featureShape, labels: selectionFeatures.labels,
                               batchSize: 256, shuffle: false, seed: 0) : nil
        let selectionImages = hasSelection ? loader(train, selectionIndices, shuffle: false, seed: 0, batch: evalBatch) : nil

        var headConfig = config
        headConfig.trunk = .none; headConfig.inputShape = featureShape
        var fineConfig = config
        fineConfig.frozenBatchNormStatistics = true  // as Keras advises for fine-tuning
        var runs: [String: [MethodRun]] = [:]
        for seed in seeds {
            // (a) A head on the features. Its time includes computing the features once.
            let head = try Model(headConfig, on: device, seed: seed)
            var a = try fit("\(methods[0]), seed \(seed)", head, optimizers.features,
                            train: try ArrayBatches(values: trainFeatures.values, sampleShape: featureShape, labels: trainFeatures.labels,
                                                    batchSize: batch, shuffle: true, seed: seed),
                            epochs: epochs.features, val: scoredFeatureBatches, selection: selectionFeatureBatches, test: testFeatureBatches)
            a.secondsAfter = a.secondsAfter.map { $0 + featureSeconds }
            runs[methods[0], default: []].append(a)

            // (b) Fine-tune from the pretrained trunk and this seed's head of (a), as the tutorials do.
            let fine = try pretrained(fineConfig, seed: seed)
            try loadWeights(weightSet(of: head.layers), into: fine.headLayers)
            try fine.check(unfreeze)
            fine.apply(unfreeze)
            runs[methods[1], default: []].append(try fit("\(methods[1]), seed \(seed)", fine, optimizers.finetune,
                                                         train: loader(train, trainIndices, shuffle: true, seed: seed, augment: true),
                                                         epochs: epochs.finetune, val: scoredImages, selection: selectionImages, test: testImages))

            // (c) The same network from scratch on the same images.
            let scratch = try Model(config, on: device, seed: seed &+ 1000)
            runs[methods[2], default: []].append(try fit("\(methods[2]), seed \(seed)", scratch, optimizers.scratch,
                                                         train: loader(train, trainIndices, shuffle: true, seed: seed, augment: true),
                                                         epochs: epochs.scratch, val: scoredImages, selection: selectionImages, test: testImages))
        }
        return Result(runs: runs, featureSeconds: featureSeconds)
    }

    /// Whether the runs chose and restored an epoch by the selection split.
    var restores: Bool { restoreBest && !selectionIndices.isEmpty }

    /// The results table: one row per method, mean ± sd (min–max) over the seeds: the last
    /// epoch's accuracy and, when restoring, the restored epoch's and which epochs were chosen.
    public func table(_ result: Result, targets: [Double]) -> String {
        let targets = targets.sorted()
        func percent(_ v: Double) -> String { String(format: "%.0f%%", 100 * v) }
        let restored = restores ? " restored epoch's accuracy | epoch restored |" : ""
        var text = """
        | method | jump start (epoch 1) | final accuracy (last epoch) |\(restored)\(targets.map { " time to \(percent($0)) |" }.joined()) training time |
        | --- | --- | --- |\(restores ? " --- | --- |" : "")\(String(repeating: " --- |", count: targets.count)) --- |

        """
        for m in methods {
            let r = result.runs[m] ?? []
            let times = targets.map { t -> String in
                let reached = r.compactMap { $0.timeTo(t) }
                guard let first = reached.map(\.epoch).min(), let last = reached.map(\.epoch).max() else { return "not reached (0/\(r.count) seeds)" }
                return (first == last ? "epoch \(first)" : "epochs \(first)–\(last)") + ", " + spread(reached.map(\.seconds), percent: false)
                    + (reached.count < r.count ? " (\(reached.count)/\(r.count) seeds)" : "")
            }
            var best = ""
            if restores {
                let epochs = r.compactMap(\.bestEpoch)
                best = " \(spread(r.compactMap(\.best), percent: true)) | \(epochs.isEmpty ? "-" : epochs.map(String.init).joined(separator: ", ")) |"
            }
            text += "| \(m) | \(spread(r.map { $0.perEpoch[0] }, percent: true)) | \(spread(r.map(\.final), percent: true)) |" + best
                + times.map { " \($0) |" }.joined() + " \(spread(r.map { $0.secondsAfter.last! }, percent: false)) |\n"
        }
        text += "\nPer seed (final accuracy): " + methods.map { m in
            "\(m.prefix(3)) " + (result.runs[m] ?? []).map { String(format: "%.2f%%", 100 * $0.final) }.joined(separator: ", ")
        }.joined(separator: "; ") + "\n"
        if restores {
            text += "Per seed (restored epoch's accuracy): " + methods.map { m in
                "\(m.prefix(3)) " + (result.runs[m] ?? []).map { r in r.best.map { String(format: "%.2f%% (epoch %d)", 100 * $0, r.bestEpoch!) } ?? "-" }
                    .joined(separator: ", ")
            }.joined(separator: "; ") + "\n"
        }
        return text
    }

    /// What the scores mean, for the results file.
    public func legend(_ result: Result) -> String {
        "Jump start: test accuracy after epoch 1 on \(scored.count) test images; final: on all \(testIndices.count) test images; "
            + "time to a target: the epoch and the training seconds at which the per-epoch score first reached it "
            + "(method (a) includes computing the features, \(String(format: "%.0f", result.featureSeconds)) s; (b) starts from (a)'s head "
            + "and its times exclude (a)'s). Seeds \(seeds.map(String.init).joined(separator: ", ")) (initialisation, shuffling, dropout). "
            + "Values: mean ± standard deviation (min–max) over the seeds. "
            + (restores
                ? "Final accuracy: the weights of the last epoch. Restored epoch: each run also keeps the weights of its epoch with the lowest loss on "
                    + "a selection split of \(selectionIndices.count) training images held out from training (never the test images; ties go to the earliest "
                    + "epoch), as Keras' restore_best_weights, and scores them on all test images; (b) starts from (a)'s restored head. "
                : "The last epoch's weights are scored (no epoch is restored). ")
            + (batchNormRecalibration.map {
                "BatchNorm recalibrated at each epoch's end (precise BatchNorm over at most \($0.maxBatches) training batches, before the scoring) "
                    + "in the layers that train their statistics: those of (c) where the network has BatchNorm; (b) keeps its BatchNorm statistics "
                    + "frozen, as Keras advises for fine-tuning, and (a)'s head has none."
            } ?? "BatchNorm not recalibrated: its moving statistics are training's exponential averages.")
    }

    func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }).split(separator: "-").joined(separator: "-")
    }
}
