import ArgumentParser
import Foundation
import VGGTLTensors
import VGGTLData
import VGGTLIO
import VGGTLModels
import VGGTLTrain

/// What a features folder records next to features.npy, labels.npy and classes.json: how they
/// were made (so a head trained on them can be used on images) and a fingerprint for reuse.
struct FeaturesInfo: Codable {
    var input: InputSpec
    var trunk: ModelConfig.Trunk
    var weights: String
    var shape: [Int]
    var classNames: [String]
    var files: [String]
    var fingerprint: String
    /// labels.npy holds a multi-hot row per image (`--labels`), `classNames` the labels; absent: one class index per image.
    var multiLabel: Bool?
}

/// FNV-1a 64 over text, as hex: a cache key, not a security hash.
func fnv1a(_ text: String) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return String(h, radix: 16)
}

/// Size and modification time of a file: enough to notice that it changed.
func fileStamp(_ path: String) -> String {
    let a = try? FileManager.default.attributesOfItem(atPath: path)
    let size = (a?[.size] as? NSNumber)?.intValue ?? -1
    let time = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    return "\(size):\(time)"
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bottleneck features: a frozen trunk over class folders -> features.npy, labels.npy, classes.json.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var backbone: ModelOptions<ExtractDefaults>
    @OptionGroup var weights: WeightsOptions
    @Option(help: "Images: one subfolder per class.") var data: String
    @OptionGroup var multiLabel: LabelsOptions
    @Option(help: "Output folder.") var out: String
    @Option(help: "Batch size.") var batch = 32
    @Flag(help: "The trunk has BatchNorm (VGG16-BN; same as --model vgg16-bn); found from the weights when they have BatchNorm tensors.") var bn = false
    @Flag(help: "Start trunk layers that --weights lacks from random values instead of stopping.") var allowMissingWeights = false
    @Flag(help: "Stop at the first unreadable image instead of skipping it with a warning.") var strict = false
    @OptionGroup var image: ImageOptions<ExtractDefaults>

    func run() throws {
        guard batch >= 1 else { throw VGGTLError.badFlag(flag: "--batch", value: "\(batch)", expected: "at least 1") }
        try checkWritable(out, flag: "--out")
        let outDir = URL(fileURLWithPath: out)
        let device = try global.openDevice()
        // After MPI has started: a folder in use then stops every rank at once.
        let lock = try takeOutFolder(out)
        defer { lock?.release() }
        let source: ImageSource
        if let labels = multiLabel.labels {
            source = try multiLabelSource(data: data, labels: labels, flag: "--data", labelsFlag: "--labels")
        } else {
            let folders = try classFolders(data, flag: "--data")
            for w in folders.warnings { stderr("warning: \(w)") }
            source = folders
        }
        let requested = try backbone.trunk(bn: bn)
        let choice = try weights.choice(requested)
        let trunkKind = try choice.trunk(requested)
        let input = try image.spec(defaultSize: choice.inputSize ?? defaultSize(trunkKind, vgg: 150), defaultPreprocessing: choice.preprocessing)
        let weightsName = choice.name
        let fingerprint = fnv1a(([weightsName, choice.stamp, "\(input)", trunkKind.rawValue]
                                 + (source.isMultiLabel ? source.classNames : []) + (0..<source.count).map { i in
                                     "\(source.name(i))|\(source.targets(i).map { "\(Int($0))" }.joined(separator: ","))|\(fileStamp(source.name(i)))" })
                                 .joined(separator: "\n"))
        let infoURL = outDir.appendingPathComponent("features.json")
        var upToDate = false
        if let data = FileManager.default.contents(atPath: infoURL.path), let old = try? JSONDecoder().decode(FeaturesInfo.self, from: data),
           old.fingerprint == fingerprint, FileManager.default.fileExists(atPath: outDir.appendingPathComponent("features.npy").path) {
            upToDate = true
        }
        if try primaryDecides(upToDate, what: "features up to date") {
            print("features in \(out) are up to date (same weights, preprocessing, size and images): reused, not recomputed")
            return
        }
        print(choice.describe(input: input, requested: requested, preprocessFlag: image.preprocess != nil))
        let net = try Model(ModelConfig(trunk: trunkKind, inputShape: [input.height, input.width, 3], headHidden: 0, classes: 2),
                            on: device, seed: global.seed)
        if let set = try choice.load() {
            let r = try loadWeights(set, into: net.kerasOrderedTrunkLayers, skipMissing: allowMissingWeights)
            r.notes(file: weightsName).forEach { print($0) }
            if !r.skipped.isEmpty { stderr("warning: \(weightsName) has no weights for \(r.skipped.count) trunk arrays (\(r.skipped.prefix(4).joined(separator: ", "))\(r.skipped.count > 4 ? ", ..." : "")): they start from random values") }
        }
        let featureShape = Array(try net.network.outputShape([1, input.height, input.width, 3], of: net.trunkOutput).dropFirst())
        // Under mpirun each rank extracts a contiguous share; rank 0 gathers and writes them in order.
        let loader = evaluationShare(BatchLoader(source: source, batchSize: batch, input: input, shuffle: false, seed: global.seed))
        print("extracting \(featureShape) features of \(source.count) images \(source.isMultiLabel ? "with" : "in") \(source.classNames.count) \(source.isMultiLabel ? "labels" : "classes") on \(device.name)"
              + (Job.comm.map { " and \($0.size - 1) more rank\($0.size == 2 ? "" : "s")" } ?? ""))
        // Per image its class index, or its multi-hot row (`width` floats).
        let width = source.isMultiLabel ? source.classNames.count : 1
        var features: [Float] = [], labels: [Float] = [], indices: [Int] = [], skipped = 0
        let bar = ProgressBar(total: loader.batchCount)
        var x: Tensor?, k = 0
        for b in loader.batches(epoch: 0) {
            k += 1
            if strict, !b.failures.isEmpty {
                throw VGGTLError.unreadableImages(files: b.failures.map(\.name), reasons: b.failures.map(\.reason))
            }
            for f in b.failures { stderr("warning: skipped \(f.name): \(f.reason)"); skipped += 1 }
            if b.count > 0 {
                let shape = [b.count, input.height, input.width, 3]
                features += try fittingBatch(b.count) {
                    if x?.shape != shape { x = try Tensor(uninitialized: shape, on: device) }
                    b.x.withUnsafeBufferPointer { device.write($0, to: x!.buffer, offset: 0) }
                    let y = try net.network.forward(x!, .inference, upTo: net.trunkOutput).toArray()
                    try device.checkHealthy()
                    return y
                }
                labels += b.labels
                indices += b.indices
            }
            bar.update(k, images: indices.count, metrics: [])
        }
        bar.update(k, images: indices.count, metrics: [], final: true)
        skipped = Int(try sumOverRanks([Double(skipped)], what: "unreadable images")[0])
        // Every rank takes part in every gather; rank 0 alone gets the results and writes.
        let allFeatures = try gatherOnPrimary(features, what: "features"), allLabels = try gatherOnPrimary(labels, what: "labels")
        let allIndices = try gatherOnPrimary(indices, what: "image indices")
        guard let allFeatures, let allLabels, let allIndices else { return }
        (features, labels) = (allFeatures, allLabels)
        let files = allIndices.map { source.name($0) }, n = allIndices.count
        try NPY.write(features, shape: [n] + featureShape, to: outDir.appendingPathComponent("features.npy"))
        // Multi-label: an int64 multi-hot matrix (n, labels), as sklearn's MultiLabelBinarizer gives.
        try NPY.writeInt64(labels.map { Int($0) }, shape: source.isMultiLabel ? [n, width] : [n], to: outDir.appendingPathComponent("labels.npy"))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(enc.encode(source.classNames), to: outDir.appendingPathComponent("classes.json"))
        let info = FeaturesInfo(input: input, trunk: trunkKind, weights: weightsName, shape: featureShape, classNames: source.classNames,
                                files: files, fingerprint: fingerprint, multiLabel: source.isMultiLabel ? true : nil)
        try writeAtomically(enc.encode(info), to: infoURL)
        print("wrote \(out)/features.npy \([n] + featureShape), labels.npy\(source.isMultiLabel ? " \([n, width]) (multi-hot)" : ""), classes.json\(skipped > 0 ? " (\(skipped) unreadable images skipped)" : "")")
    }
}

struct TrainTop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-top", abstract: "Train a small head on saved bottleneck features (fast, no images).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Features folder from `vggtl extract` (or any folder with features.npy, labels.npy, classes.json).") var features: String
    @Option(help: "Validation features folder.") var valFeatures: String?
    @Option(help: "Hold out this fraction for validation instead.") var valSplit: Double?
    @OptionGroup var head: HeadOptions
    @OptionGroup var opts: TrainingOptions<TrainTopDefaults>

    /// A doubt about the features: a warning, or an error under --strict.
    func doubt(_ text: String) throws {
        if opts.strict { throw VGGTLError.invalidArgument("--strict: \(text)") }
        stderr("warning: \(text) (--strict makes this an error)")
    }

    /// `targets`: labels.npy's multi-hot rows when it is 2-D (multi-label features; `labels` then all 0), else nil.
    static func load(_ dir: String) throws -> (values: [Float], shape: [Int], labels: [Int], targets: [Float]?, classes: [String], info: FeaturesInfo?) {
        let u = URL(fileURLWithPath: dir)
        let f = try NPY.read(u.appendingPathComponent("features.npy"))
        let l = try NPY.read(u.appendingPathComponent("labels.npy"))
        guard l.shape.count <= 2 else {
            throw VGGTLError.invalidArgument("\(dir)/labels.npy has shape \(l.shape); expected (n,) class indices or an (n, labels) multi-hot matrix")
        }
        let rows = l.shape.first ?? l.values.count
        guard f.shape.first == rows else {
            throw VGGTLError.shapeMismatch(what: "\(dir): features.npy rows vs labels.npy", expected: [rows], got: f.shape)
        }
        let info = FileManager.default.contents(atPath: u.appendingPathComponent("features.json").path).flatMap { try? JSONDecoder().decode(FeaturesInfo.self, from: $0) }
        var classes: [String]
        if let data = FileManager.default.contents(atPath: u.appendingPathComponent("classes.json").path) {
            classes = try JSONDecoder().decode([String].self, from: data)
        } else {
            classes = l.shape.count == 2 ? (0..<l.shape[1]).map { "label\($0)" } : (0...Int(l.values.max() ?? 0)).map { "class\($0)" }
        }
        if l.shape.count == 2 {
            guard l.shape[1] == classes.count else {
                throw VGGTLError.invalidArgument("\(dir)/labels.npy has \(l.shape[1]) label columns but classes.json lists \(classes.count) labels")
            }
            if let bad = l.values.first(where: { $0 != 0 && $0 != 1 }) {
                throw VGGTLError.invalidArgument("\(dir)/labels.npy is a multi-hot matrix but holds \(bad); every entry must be 0 or 1")
            }
            return (f.values, Array(f.shape.dropFirst()), Array(repeating: 0, count: rows), l.values, classes, info)
        }
        let labels = l.values.map { Int($0) }
        if let bad = labels.first(where: { $0 < 0 || $0 >= classes.count }) {
            throw VGGTLError.invalidArgument("\(dir)/labels.npy has label \(bad) but classes.json lists \(classes.count) classes")
        }
        return (f.values, Array(f.shape.dropFirst()), labels, nil, classes, info)
    }

    func run() throws {
        let device = try global.openDevice()
        let t = try Self.load(features)
        let all = try ArrayBatches(values: t.values, sampleShape: t.shape, labels: t.labels, targets: t.targets, batchSize: opts.batch, shuffle: true, seed: global.seed)
        var train = all, validation: ArrayBatches?
        if let valFeatures {
            let v = try Self.load(valFeatures)
            guard v.shape == t.shape, v.classes == t.classes, (v.targets == nil) == (t.targets == nil) else {
                throw VGGTLError.invalidArgument("--val-features \(valFeatures): shape \(v.shape) / classes \(v.classes) differ from --features (\(t.shape) / \(t.classes))")
            }
            if let a = t.info, let b = v.info, a.input != b.input || a.trunk != b.trunk || a.weights != b.weights {
                try doubt("--val-features \(valFeatures) came from \(b.trunk.rawValue) \(b.weights) at \(b.input.height)x\(b.input.width) \(b.input.preprocessing.rawValue), "
                          + "--features from \(a.trunk.rawValue) \(a.weights) at \(a.input.height)x\(a.input.width) \(a.input.preprocessing.rawValue): validation measures other features")
            }
            validation = try ArrayBatches(values: v.values, sampleShape: v.shape, labels: v.labels, targets: v.targets, batchSize: opts.batch, shuffle: false, seed: global.seed)
        } else if let valSplit {
            guard valSplit > 0, valSplit < 1 else { throw VGGTLError.badFlag(flag: "--val-split", value: "\(valSplit)", expected: "a fraction in (0, 1)") }
            let s = stratifiedSplit(labels: t.labels, fraction: valSplit, seed: global.seed)
            train = try all.subset(s.train)
            validation = try all.subset(s.validation)
            validation = try ArrayBatches(values: validation!.values, sampleShape: t.shape, labels: validation!.labels, targets: validation!.targets,
                                          batchSize: opts.batch, shuffle: false, seed: global.seed)
        }
        var config = ModelConfig(trunk: .none, inputShape: t.shape, classes: t.classes.count)
        config.multiLabel = t.targets != nil
        try head.apply(to: &config, features: t.info?.trunk)
        let spec = try opts.optimizerSpec()
        if t.info == nil {
            try doubt("\(features) has no features.json: the trunk, size and preprocessing of these features are unknown, so evaluate and predict cannot use the head on images")
        }
        let input = t.info?.input ?? InputSpec(height: t.shape[0] * 32, width: (t.shape.count > 1 ? t.shape[1] : 1) * 32, preprocessing: .caffe)
        print("training a head on \(train.count) feature rows \(t.shape), \(t.classes.count) \(config.multiLabel ? "labels (multi-label)" : "classes")"
              + (t.info.map { ", features of \($0.trunk.rawValue) (\(URL(fileURLWithPath: $0.weights).lastPathComponent), \($0.input.height)x\($0.input.width), \($0.input.preprocessing.rawValue)), head pooling \(config.headPooling.rawValue)" } ?? ""))
        var c = TrainingSession.Configuration(model: config, classNames: t.classes, input: input, runFolder: opts.outURL, optimizer: spec, title: "train-top")
        c.featureTrunk = t.info.map { .init(trunk: $0.trunk, weights: $0.weights) }
        train.balanced = opts.balance.balancedSampler
        try opts.session(c, labels: train.labels, device: device, global: global).run(train: train, validation: validation)
    }
}
