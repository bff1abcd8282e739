import ArgumentParser
import Foundation
import VGGTL

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accuracy, per-class precision/recall and the confusion matrix of a trained run on labelled images.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Run folder (uses best.json, else last.json).") var model: String
    @Option(help: "Class folders, cifar10:DIR or fashion-mnist[:DIR] (their test split).") var data: String
    @Option(help: "Batch size.") var batch = 32

    func run() throws {
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        let device = try global.openDevice()
        let (info, net) = try Checkpoint.imageModel(runDir: URL(fileURLWithPath: model), on: device)
        let source = try DataSpec(parsing: data, flag: "--data").evaluationSource()
        guard source.classNames == info.classNames else {
            let predictions = "its predictions layer has \(info.model.outputUnits) unit\(info.model.outputUnits == 1 ? "" : "s")"
            throw VGGTLError.invalidArgument("--data \(data) has \(source.classNames.count) classes \(source.classNames), but the model in \(model) "
                + "was trained on \(info.classNames.count) classes \(info.classNames) (\(predictions)); evaluate on data with the same class folders")
        }
        // The model's own input size and preprocessing, whatever the flags of this command.
        let loader = BatchLoader(source: source, batchSize: batch, input: info.input, shuffle: false, seed: global.seed)
        print("evaluating \(source.count) images at \(info.input.height)x\(info.input.width), preprocessing \(info.input.preprocessing.rawValue), on \(device.name)")
        let trainer = Trainer(model: net, optimizer: SGD(learningRate: 1))
        // Under mpirun each rank evaluates its share; rank 0 gathers the predictions.
        let r = try trainer.evaluate(evaluationShare(loader))
        let sums = try sumOverRanks([r.metrics.loss, Double(r.metrics.samples), Double(trainer.unreadableImages.count)], what: "evaluation loss")
        let truth = try gatherOnPrimary(r.truth, what: "labels"), predicted = try gatherOnPrimary(r.predicted, what: "predictions")
        guard let truth, let predicted else { return }
        let unreadable = Int(sums[2])
        if unreadable > 0 { stderr("warning: \(unreadable) unreadable image\(unreadable == 1 ? "" : "s") skipped; the report covers the other \(truth.count)") }
        print(ClassificationReport(classNames: info.classNames, truth: truth, predicted: predicted, loss: sums[1] > 0 ? sums[0] / sums[1] : .nan).text)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Top-k classes with probabilities for image files or folders.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Run folder (uses best.json, else last.json).") var model: String
    @Option(help: "How many classes to show per image.") var top = 3
    @Argument(help: "Image files or folders.") var inputs: [String]

    func run() throws {
        guard top >= 1 else { throw VGGTLError.badFlag(flag: "--top", value: "\(top)", expected: "at least 1") }
        let device = try global.openDevice()
        let (info, net) = try Checkpoint.imageModel(runDir: URL(fileURLWithPath: model), on: device)
        var files: [String] = []
        for path in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                throw VGGTLError.invalidArgument("\(path): no such file or folder")
            }
            if isDir.boolValue {
                let items = FileManager.default.enumerator(atPath: path)?.compactMap { $0 as? String } ?? []
                files += items.filter { ["jpg", "jpeg", "png"].contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
                    .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }.map { path + "/" + $0 }
            } else { files.append(path) }
        }
        let x = try Tensor(zeros: [1] + net.config.inputShape, on: device)
        var buffer = [Float](repeating: 0, count: x.count)
        for file in files {
            do {
                let img = resize(try ImageCodec.decode(contentsOf: URL(fileURLWithPath: file)), height: info.input.height, width: info.input.width)
                buffer.withUnsafeMutableBufferPointer { info.input.preprocessing.apply(img, into: $0.baseAddress!) }
                buffer.withUnsafeBufferPointer { device.write($0, to: x.buffer, offset: 0) }
                let p = probabilities(logits: try net.network.forward(x, training: false).toArray(), rows: 1)[0]
                let best = p.indices.sorted { p[$0] > p[$1] }.prefix(top)
                print(file + ": " + best.map { "\(info.classNames[$0]) \(String(format: "%.4f", p[$0]))" }.joined(separator: ", "))
            } catch let e as VGGTLError {
                stderr("warning: skipped \(file): \(e)")
            }
        }
    }
}
