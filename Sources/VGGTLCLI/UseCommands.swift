import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLOptim
import VGGTLData
import VGGTLModels
import VGGTLTrain

/// `--model RUN --checkpoint best|last`: the checkpoint a command uses, said in one line.
struct RunChoice: ParsableArguments {
    @Option(help: "Run folder (from finetune, train or train-top).") var model: String
    @Option(help: "Checkpoint. (default: best when the run has one, else last)") var checkpoint: CheckpointName?

    /// Where training commands take a backbone, `--model` here is a run folder: a backbone name
    /// (or any missing folder) says so before any work.
    func validate() throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: model, isDirectory: &isDir)
        guard !(exists && isDir.boolValue) else { return }
        if !exists, let trunk = ModelConfig.Trunk(argument: model) {
            throw VGGTLError.invalidArgument("--model \(model): here --model is a run folder (the --out of finetune, train or train-top), not a backbone name; "
                + "train one first, e.g. vggtl finetune --model \(trunk.rawValue) --data DIR --out RUN, then pass --model RUN")
        }
        throw VGGTLError.invalidArgument("--model \(model): \(exists ? "a file" : "no such folder"), so no checkpoint (best.json or last.json) to use; "
            + "--model here is a run folder (the --out of finetune, train or train-top)")
    }

    /// The checkpoint's info and model on `device`, and a line that says which checkpoint it is.
    func open(on device: Device) throws -> (info: CheckpointInfo, model: Model, name: String, line: String) {
        let json = try Checkpoint.preferred(in: URL(fileURLWithPath: model), checkpoint?.rawValue)
        let (info, net) = try Checkpoint.imageModel(json: json, on: device)
        let name = json.deletingPathExtension().lastPathComponent
        let valLoss = info.history.records.last?.valLoss.map { String(format: ", val_loss %.4f", $0) } ?? ""
        let why = name == "best" ? "the epoch with the lowest val_loss" : "the last epoch"
        let other = name == "best" ? " (--checkpoint last for the last)" : ""
        return (info, net, name, "using \(json.path) (\(why)): epoch \(info.epoch)\(valLoss)\(other)")
    }
}

/// Pretty, key-sorted JSON on stdout.
/// JSON has no NaN: a value that is not finite is left out.
func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }

func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accuracy, per-class precision/recall and the confusion matrix of a trained run on labelled images.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var runFolder: RunChoice
    @Option(help: "Class folders, cifar10:DIR or fashion-mnist[:DIR] (their test split).") var data: String
    @OptionGroup var multiLabel: LabelsOptions
    @Option(help: "Multi-label models: the probability at which a label counts as predicted, for precision, recall and F1. (default: 0.5)") var threshold: Float?
    @Option(help: "Batch size.") var batch = 32
    @Flag(help: "Print the results as JSON (for scripts) instead of the table.") var json = false

    struct Output: Encodable {
        struct PerClass: Encodable { var name: String; var precision: Double; var recall: Double; var f1: Double; var support: Int }
        var model: String, checkpoint: String, epoch: Int, data: String, images: Int
        var accuracy: Double, loss: Double?
        /// nil (absent) when there were no images to score.
        var balancedAccuracy: Double?, macroPrecision: Double?, macroRecall: Double?, macroF1: Double?
        var classes: [PerClass]
        var confusion: [[Int]]
        var skipped: [String]
    }

    func run() throws {
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        try checkThreshold(threshold)
        let device = try global.openDevice()
        let (info, net, checkpointName, line) = try runFolder.open(on: device)
        if info.model.multiLabel { return try runMultiLabel(info: info, net: net, checkpointName: checkpointName, line: line, device: device) }
        if multiLabel.labels != nil {
            throw VGGTLError.invalidArgument("--labels: the model in \(runFolder.model) is single-label (one class per image); evaluate it on class folders without --labels")
        }
        if let threshold {
            throw VGGTLError.invalidArgument("--threshold \(threshold) is for multi-label models; the model in \(runFolder.model) picks one class per image (leave --threshold out)")
        }
        let source = try DataSpec(parsing: data, flag: "--data").evaluationSource()
        guard source.classNames == info.classNames else {
            let predictions = "its predictions layer has \(info.model.outputUnits) unit\(info.model.outputUnits == 1 ? "" : "s")"
            throw VGGTLError.invalidArgument("--data \(data) has \(source.classNames.count) classes \(source.classNames), but the model in \(runFolder.model) "
                + "was trained on \(info.classNames.count) classes \(info.classNames) (\(predictions)); evaluate on data with the same class folders")
        }
        // The model's own input size and preprocessing, whatever the flags of this command.
        let loader = BatchLoader(source: source, batchSize: batch, input: info.input, shuffle: false, seed: global.seed)
        if !json {
            print(line)
            print("evaluating \(source.count) images at \(info.input.height)x\(info.input.width), preprocessing \(info.input.preprocessing.rawValue), on \(device.name)")
        }
        let trainer = Trainer(model: net, optimizer: SGD(learningRate: 1))
        // Under mpirun each rank evaluates its share; rank 0 gathers the predictions.
        let r = try trainer.evaluate(evaluationShare(loader), progress: !json)
        let sums = try sumOverRanks([r.metrics.loss, Double(r.metrics.samples), Double(trainer.unreadableImages.count)], what: "evaluation loss")
        let truth = try gatherOnPrimary(r.truth, what: "labels"), predicted = try gatherOnPrimary(r.predicted, what: "predictions")
        guard let truth, let predicted else { return }
        let unreadable = Int(sums[2])
        if unreadable > 0 { stderr("warning: \(unreadable) unreadable image\(unreadable == 1 ? "" : "s") skipped; the report covers the other \(truth.count)") }
        let report = ClassificationReport(classNames: info.classNames, truth: truth, predicted: predicted, loss: sums[1] > 0 ? sums[0] / sums[1] : .nan)
        if info.classWeights == nil, info.sampler == nil, let warning = imbalanceWarning(labels: truth, classNames: info.classNames, training: false) {
            stderr("warning: \(warning)")
        }
        guard json else { print(report.text); return }
        try printJSON(Output(model: runFolder.model, checkpoint: checkpointName, epoch: info.epoch, data: data, images: report.total,
                             accuracy: report.accuracy, loss: report.loss.flatMap { $0.isFinite ? $0 : nil },
                             balancedAccuracy: finite(report.balancedAccuracy), macroPrecision: finite(report.macroPrecision),
                             macroRecall: finite(report.macroRecall), macroF1: finite(report.macroF1),
                             classes: info.classNames.enumerated().map { c, name in
                                 .init(name: name, precision: report.precision(c), recall: report.recall(c), f1: report.f1(c), support: report.support(c)) },
                             confusion: report.confusion, skipped: trainer.unreadableImages))
    }
}

extension Evaluate {
    struct MultiLabelOutput: Encodable {
        struct PerLabel: Encodable {
            var name: String; var precision: Double; var recall: Double; var f1: Double; var averagePrecision: Double?; var support: Int
        }
        var model: String, checkpoint: String, epoch: Int, data: String, labelsFile: String, images: Int
        var mAP: Double?, exactMatch: Double?, loss: Double?, threshold: Float
        var macroPrecision: Double?, macroRecall: Double?, macroF1: Double?
        var labels: [PerLabel]
        /// Labels without a positive image: not in mAP.
        var labelsWithoutPositives: [String]
        var skipped: [String]
    }

    /// A multi-label model: per-label precision/recall/F1 at --threshold and mAP over the images
    /// --labels lists (under mpirun each rank scores a share; rank 0 gathers the probabilities).
    func runMultiLabel(info: CheckpointInfo, net: Model, checkpointName: String, line: String, device: Device) throws {
        guard let labels = multiLabel.labels else {
            throw VGGTLError.invalidArgument("the model in \(runFolder.model) is multi-label (labels \(info.classNames.joined(separator: ", "))): "
                + "give --labels FILE, the CSV of --data's images and their labels")
        }
        let source = try multiLabelSource(data: data, labels: labels, flag: "--data", labelsFlag: "--labels")
        guard source.classNames == info.classNames else {
            throw VGGTLError.invalidArgument("--labels \(labels) has labels \(source.classNames), but the model in \(runFolder.model) was trained on \(info.classNames); "
                + "evaluate with a labels file that uses the same labels")
        }
        let loader = BatchLoader(source: source, batchSize: batch, input: info.input, shuffle: false, seed: global.seed)
        if !json {
            print(line)
            print("evaluating \(source.count) images with \(source.classNames.count) labels at \(info.input.height)x\(info.input.width), preprocessing \(info.input.preprocessing.rawValue), on \(device.name)")
        }
        let trainer = Trainer(model: net, optimizer: SGD(learningRate: 1))
        let r = try trainer.evaluate(evaluationShare(loader), progress: !json)
        let sums = try sumOverRanks([r.metrics.loss, Double(r.metrics.samples), Double(trainer.unreadableImages.count)], what: "evaluation loss")
        let logits = try gatherOnPrimary(r.logits, what: "logits"), targets = try gatherOnPrimary(r.targets, what: "multi-hot targets")
        guard let logits, let targets else { return }
        let k = info.classNames.count, rows = logits.count / k
        let unreadable = Int(sums[2])
        if unreadable > 0 { stderr("warning: \(unreadable) unreadable image\(unreadable == 1 ? "" : "s") skipped; the report covers the other \(rows)") }
        let truth = (0..<rows).map { Array(targets[($0 * k)..<(($0 + 1) * k)]) }
        let report = MultiLabelReport(labelNames: info.classNames, probabilities: sigmoidProbabilities(logits: logits, rows: rows), targets: truth,
                                      threshold: threshold ?? 0.5, loss: sums[1] > 0 ? sums[0] / sums[1] : .nan)
        guard json else { print(report.text); return }
        try printJSON(MultiLabelOutput(model: runFolder.model, checkpoint: checkpointName, epoch: info.epoch, data: data, labelsFile: labels, images: rows,
                                       mAP: finite(report.meanAveragePrecision), exactMatch: finite(report.exactMatchRatio),
                                       loss: report.loss.flatMap(finite), threshold: report.threshold,
                                       macroPrecision: finite(report.macroPrecision), macroRecall: finite(report.macroRecall), macroF1: finite(report.macroF1),
                                       labels: info.classNames.enumerated().map { j, name in
                                           .init(name: name, precision: report.precision(j), recall: report.recall(j), f1: report.f1(j),
                                                 averagePrecision: report.averagePrecisions[j], support: report.support[j]) },
                                       labelsWithoutPositives: report.labelsWithoutPositives, skipped: trainer.unreadableImages))
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Top-k classes with probabilities for image files or folders.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var runFolder: RunChoice
    @Option(help: "How many classes to show per image (single-label models). (default: 3)") var top: Int?
    @Option(help: "Multi-label models: show the labels whose probability is at least this. (default: 0.5)") var threshold: Float?
    @Flag(help: "Print the predictions as JSON (for scripts; multi-label: every label's probability).") var json = false
    @Argument(help: "Image files or folders.") var inputs: [String]

    struct Output: Encodable {
        struct Guess: Encodable { var `class`: String; var probability: Float }
        struct Label: Encodable { var label: String; var probability: Float; var predicted: Bool }
        /// `top` for single-label models; `labels` (all of them, in label order) for multi-label ones.
        struct Prediction: Encodable { var file: String; var top: [Guess]?; var labels: [Label]? }
        struct Skipped: Encodable { var file: String; var reason: String }
        var model: String, checkpoint: String, epoch: Int
        var threshold: Float?
        var predictions: [Prediction]
        var skipped: [Skipped]
    }

    /// Image files of the arguments: files as given, folders searched recursively (sorted), paths
    /// joined without doubled slashes.
    static func imageFiles(_ inputs: [String]) throws -> [String] {
        var files: [String] = []
        for path in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw VGGTLError.invalidArgument("\(path): no such file or folder")
            }
            guard isDir.boolValue else { files.append(path); continue }
            var base = path
            while base.count > 1, base.hasSuffix("/") { base.removeLast() }
            let items = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
            files += items.filter { ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
                .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
                .map { base == "/" ? "/" + $0 : base + "/" + $0 }
        }
        return files
    }

    func run() throws {
        if let top, top < 1 { throw VGGTLError.badFlag(flag: "--top", value: "\(top)", expected: "at least 1") }
        try checkThreshold(threshold)
        let device = try global.openDevice()
        let (info, net, checkpointName, line) = try runFolder.open(on: device)
        let multiLabel = info.model.multiLabel, cut = threshold ?? 0.5
        if let threshold, !multiLabel {
            throw VGGTLError.invalidArgument("--threshold \(threshold) is for multi-label models; the model in \(runFolder.model) picks one class per image: use --top")
        }
        if let top, multiLabel {
            throw VGGTLError.invalidArgument("--top \(top) is for single-label models; the model in \(runFolder.model) is multi-label: it shows every label "
                + "with probability >= --threshold (default 0.5), --json every label's probability")
        }
        let files = try Self.imageFiles(inputs)
        guard !files.isEmpty else {
            throw VGGTLError.invalidArgument("\(inputs.joined(separator: ", ")): no .jpg, .jpeg or .png images found (folders are searched with their subfolders); nothing to predict")
        }
        if !json { print(line) }
        let x = try Tensor(zeros: [1] + net.config.inputShape, on: device)
        var buffer = [Float](repeating: 0, count: x.count)
        var out = Output(model: runFolder.model, checkpoint: checkpointName, epoch: info.epoch, threshold: multiLabel ? cut : nil, predictions: [], skipped: [])
        var predicted = 0
        for file in files {
            do {
                let img = resize(try ImageCodec.decode(contentsOf: URL(fileURLWithPath: file)), height: info.input.height, width: info.input.width)
                buffer.withUnsafeMutableBufferPointer { info.input.preprocessing.apply(img, into: $0.baseAddress!) }
                buffer.withUnsafeBufferPointer { device.write($0, to: x.buffer, offset: 0) }
                let z = try net.network.forward(x, .inference).toArray()
                if multiLabel {
                    let p = sigmoidProbabilities(logits: z, rows: 1)[0]
                    predicted += 1
                    if json {
                        out.predictions.append(.init(file: file, labels: p.indices.map { .init(label: info.classNames[$0], probability: p[$0], predicted: p[$0] >= cut) }))
                    } else {
                        let shown = p.indices.filter { p[$0] >= cut }.sorted { p[$0] > p[$1] }
                        print(file + ": " + (shown.isEmpty ? String(format: "(no label at probability >= %g)", Double(cut))
                                             : shown.map { "\(info.classNames[$0]) \(String(format: "%.4f", p[$0]))" }.joined(separator: ", ")))
                    }
                    continue
                }
                let p = probabilities(logits: z, rows: 1)[0]
                let best = p.indices.sorted { p[$0] > p[$1] }.prefix(top ?? 3)
                predicted += 1
                if json {
                    out.predictions.append(.init(file: file, top: best.map { .init(class: info.classNames[$0], probability: p[$0]) }))
                } else {
                    print(file + ": " + best.map { "\(info.classNames[$0]) \(String(format: "%.4f", p[$0]))" }.joined(separator: ", "))
                }
            } catch let e as VGGTLError {
                let reason = Self.reason(FlagWording.message(e), file: file)
                if json { out.skipped.append(.init(file: file, reason: reason)) }
                stderr("warning: skipped \(file): \(reason)")
            }
        }
        if json { try printJSON(out) }
        // Nothing predicted is a failure for scripts too; what each file lacked is listed above.
        guard predicted > 0 else {
            throw VGGTLError.invalidArgument("none of the \(files.count) image\(files.count == 1 ? "" : "s") could be read, nothing was predicted "
                + "(each is listed \(json ? "in \"skipped\"" : "above") with its reason)")
        }
    }

    /// The message without the file's path in front: the line or entry names the file already.
    static func reason(_ message: String, file: String) -> String {
        for prefix in [URL(fileURLWithPath: file).path + ": ", file + ": "] where message.hasPrefix(prefix) {
            return String(message.dropFirst(prefix.count))
        }
        return message
    }
}
