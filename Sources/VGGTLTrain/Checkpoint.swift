import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels

/// What a run folder remembers besides the arrays: enough to rebuild the model, feed it the
/// same inputs (size and preprocessing travel with the weights), and resume training exactly.
public struct CheckpointInfo: Codable, Sendable {
    public var format = "vggtl-checkpoint-1"
    public var model: ModelConfig
    public var classNames: [String]
    /// How images were turned into inputs: predict/evaluate use the same. For a head trained
    /// on features, the trunk's input (the features' own InputSpec).
    public var input: InputSpec
    /// For a head trained on features: the trunk weights the features came from.
    public var featureTrunk: FeatureTrunk?
    public var unfreeze: String
    public var optimizer: OptimizerSpec
    public var optimizerIterations: Int
    public var schedule: LearningRateSchedule
    /// Epochs completed.
    public var epoch: Int
    public var history: History
    public var seed: UInt64
    /// Dropout layers' step counters (their masks depend on them).
    public var dropoutSteps: [String: UInt32]
    /// The arrays file in the same folder.
    public var weightsFile: String
    /// A checkpoint written on Ctrl-C/SIGTERM in the middle of epoch `epoch` (0-based: the
    /// epochs completed): how many of its batches are done, and their loss/accuracy sums.
    /// nil at an epoch boundary.
    public var batchesDone: Int?
    public var partialMetrics: EpochMetrics?
    /// How the batches were split when it was written: processes, batch per process and, mid-epoch,
    /// the samples of the epoch done, so that a resume under another number of processes starts
    /// the epoch where this one stopped. nil in checkpoints of older versions.
    public var dataParallel: DataParallelRecord?
    /// The epochs the run trains (both stages of a two-stage run), the training samples it
    /// trains on, and the learning rate of an interrupted epoch: what a resume compares and
    /// continues with. nil in checkpoints of older versions.
    public var epochs: Int?
    public var trainingSamples: Int?
    public var partialLearningRate: Float?
    /// Batches whose gradients each optimiser step sums (`--accumulate`); an interrupted
    /// epoch's `batchesDone` is always at a step's end. nil in checkpoints of older versions: 1.
    public var accumulate: Int?
    /// `--class-weight` (nil: every class weighs 1) and `--sampler` ("balanced"; nil: every
    /// sample once per epoch): a resume keeps both, as they make the loss and the batches.
    public var classWeights: ClassWeights?
    public var sampler: String?
    /// `--bn-recalibrate`: precise BatchNorm at every epoch's end, over at most this many
    /// batches; nil: off (and in checkpoints of older versions).
    public var batchNormRecalibration: BatchNormRecalibration?

    public struct DataParallelRecord: Codable, Sendable, Equatable {
        public var ranks: Int
        public var batchPerRank: Int
        public var samplesDone: Int?
        public init(ranks: Int, batchPerRank: Int, samplesDone: Int?) {
            self.ranks = ranks; self.batchPerRank = batchPerRank; self.samplesDone = samplesDone
        }
        public var globalBatch: Int { ranks * batchPerRank }
    }

    public struct FeatureTrunk: Codable, Sendable, Equatable {
        public var trunk: ModelConfig.Trunk
        public var weights: String
        public init(trunk: ModelConfig.Trunk, weights: String) { self.trunk = trunk; self.weights = weights }
    }

    public init(model: ModelConfig, classNames: [String], input: InputSpec, featureTrunk: FeatureTrunk?, unfreeze: String,
                optimizer: OptimizerSpec, optimizerIterations: Int, schedule: LearningRateSchedule, epoch: Int, history: History,
                seed: UInt64, dropoutSteps: [String: UInt32], weightsFile: String,
                batchesDone: Int? = nil, partialMetrics: EpochMetrics? = nil) {
        self.model = model; self.classNames = classNames; self.input = input; self.featureTrunk = featureTrunk
        self.unfreeze = unfreeze; self.optimizer = optimizer; self.optimizerIterations = optimizerIterations
        self.schedule = schedule; self.epoch = epoch; self.history = history; self.seed = seed
        self.dropoutSteps = dropoutSteps; self.weightsFile = weightsFile
        self.batchesDone = batchesDone; self.partialMetrics = partialMetrics
    }
}

/// Atomic checkpoints in a run folder: `NAME.json` names the arrays file it belongs to, which is
/// written first under a fresh name; the JSON's rename is the commit. A kill at any moment leaves
/// the previous checkpoint whole. Weights that hold NaN or infinity are never written.
public enum Checkpoint {
    /// `progress` hears each stage the save reaches (trainer callbacks; tests kill the process there).
    public static func save(_ info: CheckpointInfo, model: Model, optimizer: Optimizer?, in dir: URL, name: String,
                            progress: (CheckpointStage) -> Void = { _ in }) throws {
        var info = info
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try model.device.checkHealthy()
        var set = weightSet(of: model.layers)
        if let optimizer {
            for t in try optimizer.stateTensors(for: model.network.parameters.filter(\.trainable)) {
                set.tensors.append((t.name, t.tensor.shape, t.tensor.toArray()))
            }
        }
        try model.device.checkHealthy()
        for t in set.tensors where t.values.contains(where: { !$0.isFinite }) {
            throw VGGTLError.nonFiniteWeights(tensor: t.name, epoch: info.epoch + (info.batchesDone == nil ? 0 : 1))
        }
        set.metadata = ["format": info.format, "epoch": "\(info.epoch)"]
        info.weightsFile = "\(name)-\(info.epoch)-\(UInt32.random(in: 0...UInt32.max)).safetensors"
        let jsonURL = dir.appendingPathComponent("\(name).json")
        let previous = try? load(jsonURL).weightsFile
        try Safetensors.write(set, to: dir.appendingPathComponent(info.weightsFile))
        progress(.arraysWritten)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try writeAtomically(enc.encode(info), to: jsonURL, beforeRename: { progress(.jsonWritten) })
        } catch {
            // The new arrays file is not referenced by anything: remove it, keep the old checkpoint.
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(info.weightsFile))
            throw error
        }
        if let previous, previous != info.weightsFile { try? FileManager.default.removeItem(at: dir.appendingPathComponent(previous)) }
        removeLeftovers(in: dir, name: name, keep: info.weightsFile)
    }

    /// Arrays files of `name` that no checkpoint references and temporary files of processes
    /// that no longer run: what a kill -9 in the middle of a save leaves behind.
    static func removeLeftovers(in dir: URL, name: String, keep: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return }
        for e in entries {
            let orphan = e.hasPrefix("\(name)-") && e.hasSuffix(".safetensors") && e != keep
            var deadTemp = false
            if e.hasPrefix(".\(name)"), let r = e.range(of: ".tmp-") {
                let pid = e[r.upperBound...].prefix { $0.isNumber }
                if let p = Int32(pid), p != getpid(), kill(p, 0) != 0, errno == ESRCH { deadTemp = true }
            }
            if orphan || deadTemp { try? FileManager.default.removeItem(at: dir.appendingPathComponent(e)) }
        }
    }

    public static func load(_ jsonURL: URL) throws -> CheckpointInfo {
        guard let data = FileManager.default.contents(atPath: jsonURL.path) else {
            throw VGGTLError.invalidArgument("no checkpoint at \(jsonURL.path)")
        }
        do { return try JSONDecoder().decode(CheckpointInfo.self, from: data) } catch {
            throw VGGTLError.invalidArgument("\(jsonURL.path) is not a vggtl checkpoint (\(error))")
        }
    }

    /// The checkpoint a finished run is used through: best-by-val_loss when there is one, else
    /// the last; `which` ("best" or "last") asks for one of them.
    public static func preferred(in runDir: URL, _ which: String? = nil) throws -> URL {
        if let which {
            guard which == "best" || which == "last" else {
                throw VGGTLError.invalidSetting(.checkpoint, value: which, expected: "best or last")
            }
            let u = runDir.appendingPathComponent("\(which).json")
            guard FileManager.default.fileExists(atPath: u.path) else {
                throw VGGTLError.noCheckpoint(folder: runDir.path, name: which)
            }
            return u
        }
        for name in ["best", "last"] {
            let u = runDir.appendingPathComponent("\(name).json")
            if FileManager.default.fileExists(atPath: u.path) { return u }
        }
        throw VGGTLError.invalidArgument("\(runDir.path) holds no checkpoint (best.json or last.json); train into it first with finetune, train or train-top")
    }

    /// Rebuilds the model of a checkpoint on a device, with its weights; optionally restores the
    /// optimizer state into `optimizer`.
    public static func restore(_ jsonURL: URL, on device: Device, optimizer: Optimizer? = nil) throws -> (CheckpointInfo, Model) {
        let info = try load(jsonURL)
        let model = try Model(info.model, on: device, seed: info.seed)
        model.apply(try UnfreezeSpec(parsing: info.unfreeze))
        let arrays = jsonURL.deletingLastPathComponent().appendingPathComponent(info.weightsFile)
        let set = try WeightFile.load(arrays)
        try loadWeights(set, into: model.layers)
        for layer in model.layers { if let d = layer as? Dropout { d.step = info.dropoutSteps[d.name] ?? 0 } }
        if let optimizer {
            optimizer.iterations = info.optimizerIterations
            let byName = Dictionary(set.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for t in try optimizer.stateTensors(for: model.network.parameters.filter(\.trainable)) {
                guard let v = byName[t.name], v.shape == t.tensor.shape else {
                    throw VGGTLError.optimizerStateMissing(file: arrays.path, tensor: t.name)
                }
                t.tensor.upload(v.values)
            }
        }
        return (info, model)
    }
}

extension Model {
    public var dropoutSteps: [String: UInt32] {
        Dictionary(uniqueKeysWithValues: layers.compactMap { ($0 as? Dropout).map { ($0.name, $0.step) } })
    }
}

extension Checkpoint {
    /// A model that takes images, from a run folder: a finetune/train run as saved, or a head
    /// trained on features put back on the trunk those features came from.
    public static func imageModel(runDir: URL, on device: Device) throws -> (CheckpointInfo, Model) {
        try imageModel(json: try preferred(in: runDir), on: device)
    }

    /// `imageModel` from a chosen checkpoint JSON (best.json or last.json of a run folder).
    public static func imageModel(json: URL, on device: Device) throws -> (CheckpointInfo, Model) {
        let runDir = json.deletingLastPathComponent()
        let info = try load(json)
        guard let ft = info.featureTrunk, info.model.trunk == .none else { return try restore(json, on: device) }
        var config = info.model
        config.trunk = ft.trunk
        config.inputShape = [info.input.height, info.input.width, 3]
        let model = try Model(config, on: device, seed: info.seed)
        guard ft.weights != "none" else {
            throw VGGTLError.invalidArgument("\(runDir.path): its features came from a randomly initialised trunk, which cannot be rebuilt")
        }
        try loadWeights(try trunkSource(ft.weights, device: { device }), into: model.kerasOrderedTrunkLayers)
        let head = try WeightFile.load(json.deletingLastPathComponent().appendingPathComponent(info.weightsFile))
        try loadWeights(head, into: model.headLayers)
        return (info, model)
    }
}

extension Checkpoint {
    /// The weights at `path`: a weights file, or a run folder (its model's weights, read through
    /// its preferred checkpoint), as `extract --weights` accepts them. `device` opens the device
    /// a run folder's model is built on to read its weights (the caller's choice, usually the CPU).
    public static func trunkSource(_ path: String, device: () throws -> Device) throws -> WeightSet {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            return try WeightFile.load(URL(fileURLWithPath: path))
        }
        let (_, model) = try imageModel(runDir: URL(fileURLWithPath: path), on: try device())
        var set = weightSet(of: model.layers)
        set.source = path
        return set
    }
}
