import Foundation
import VGGTLTensors
import VGGTLOptim
import VGGTLData
import VGGTLModels

/// What a resumed run does with settings that differ from its checkpoint's. Refused: what would
/// make another model or another task (the model and its head, preprocessing, training data,
/// the optimizer's kind, the layers that train: the checkpoint's optimizer state belongs to
/// them). Taken, and said with both values: what a user changes on purpose (learning rate and
/// the other optimizer settings, schedule, epochs).
struct ResumeCheck {
    var saved: CheckpointInfo
    /// The run as configured now.
    var model: ModelConfig
    var input: InputSpec
    var featureTrunk: CheckpointInfo.FeatureTrunk?
    var trainingSamples: Int?
    var optimizer: OptimizerSpec
    var unfreeze: String
    var schedule: LearningRateSchedule
    var epochs: Int
    /// Batches per optimiser step (`--accumulate`).
    var accumulate = 1
    var classWeights: ClassWeights? = nil
    var sampler: String? = nil
    var batchNormRecalibration: BatchNormRecalibration? = nil

    /// The differences a resume refuses.
    var refused: [SettingChange] {
        var c = Self.modelChanges(saved.model, model)
        if saved.input.preprocessing != input.preprocessing {
            c.append(.init(.preprocessing, saved: saved.input.preprocessing.rawValue, now: input.preprocessing.rawValue))
        }
        if saved.featureTrunk != featureTrunk {
            let words = { (t: CheckpointInfo.FeatureTrunk?) in t.map { "features of \($0.trunk.rawValue) (\($0.weights))" } ?? "features of unknown origin" }
            c.append(.init(.trainingData, saved: words(saved.featureTrunk), now: words(featureTrunk)))
        }
        if let was = saved.trainingSamples, let now = trainingSamples, was != now {
            c.append(.init(.trainingData, saved: "\(was) samples", now: "\(now) samples"))
        }
        if saved.optimizer.kind != optimizer.kind {
            c.append(.init(.optimizer, saved: saved.optimizer.kind.rawValue, now: optimizer.kind.rawValue))
        }
        if saved.unfreeze != unfreeze { c.append(.init(.unfreeze, saved: saved.unfreeze, now: unfreeze)) }
        // Another loss or other batches would make another run than the one the history records.
        if saved.classWeights != classWeights {
            let words = { (w: ClassWeights?) in w.map { "\($0.source) \($0.values)" } ?? "none" }
            c.append(.init(.classWeight, saved: words(saved.classWeights), now: words(classWeights)))
        }
        if saved.sampler != sampler { c.append(.init(.sampler, saved: saved.sampler ?? "shuffle", now: sampler ?? "shuffle")) }
        return c
    }

    /// The differences a resume takes, each with what it changes. `saved.epoch` epochs are done
    /// (and `saved.batchesDone` batches of the next).
    var taken: [TrainingSession.Event] {
        var notes: [TrainingSession.Event] = []
        let next = saved.epoch + 1
        let a = saved.optimizer, b = optimizer
        if a.learningRate != b.learningRate {
            // An interrupted epoch finishes at the rate it began with: every epoch of the history
            // ran at one rate.
            let effect = saved.batchesDone == nil ? "from epoch \(next) on"
                : "the interrupted epoch \(next) finishes at \(saved.partialLearningRate ?? a.learningRate); the new rate applies from epoch \(next + 1) on"
            notes.append(.settingTaken(.init(.learningRate, saved: "\(a.learningRate)", now: "\(b.learningRate)"), effect: effect))
        }
        let step = "from the next step on"
        if a.momentum != b.momentum, a.kind == .sgd { notes.append(.settingTaken(.init(.momentum, saved: "\(a.momentum)", now: "\(b.momentum)"), effect: step)) }
        if a.nesterov != b.nesterov, a.kind == .sgd { notes.append(.settingTaken(.init(.nesterov, saved: "\(a.nesterov)", now: "\(b.nesterov)"), effect: step)) }
        if a.weightDecay != b.weightDecay { notes.append(.settingTaken(.init(.weightDecay, saved: "\(a.weightDecay)", now: "\(b.weightDecay)"), effect: step)) }
        if saved.schedule != schedule {
            notes.append(.settingTaken(.init(.schedule, saved: saved.schedule.summary, now: schedule.summary), effect: "from epoch \(next) on"))
        }
        // Like another batch size: the checkpoint sits at a step's end, so the next step simply
        // sums another number of batches.
        if (saved.accumulate ?? 1) != accumulate {
            notes.append(.settingTaken(.init(.accumulate, saved: "\(saved.accumulate ?? 1)", now: "\(accumulate)"),
                                       effect: "from the next optimiser step on; the learning rate is not rescaled"))
        }
        // Like the schedule: it acts at epochs' ends, and the history says which epochs had it.
        if saved.batchNormRecalibration != batchNormRecalibration {
            let words = { (r: BatchNormRecalibration?) in r.map { "on (\($0.maxBatches) batches)" } ?? "off" }
            notes.append(.settingTaken(.init(.batchNormRecalibration, saved: words(saved.batchNormRecalibration), now: words(batchNormRecalibration)),
                                       effect: "from the end of epoch \(next) on"))
        }
        if let was = saved.epochs, was != epochs {
            notes.append(.settingTaken(.init(.epochs, saved: "\(was)", now: "\(epochs)"), effect: "training continues up to epoch \(epochs)"))
        }
        return notes
    }

    /// The model settings that differ, by name (the classes are checked on their own).
    static func modelChanges(_ a: ModelConfig, _ b: ModelConfig) -> [SettingChange] {
        var c: [SettingChange] = []
        func add<T: Equatable>(_ s: Setting, _ x: T, _ y: T, _ words: (T) -> String = { "\($0)" }) {
            if x != y { c.append(.init(s, saved: words(x), now: words(y))) }
        }
        add(.model, a.trunk.rawValue, b.trunk.rawValue)
        add(.inputSize, a.inputShape, b.inputShape) { a.trunk == .none ? "\($0)" : "\($0[0])x\($0[1])" }
        add(.includeTop, a.includeTop, b.includeTop)
        add(.headPooling, a.headPooling.rawValue, b.headPooling.rawValue)
        add(.headHidden, a.headHidden, b.headHidden)
        add(.headDropout, a.headDropout, b.headDropout)
        add(.batchNormStatistics, a.frozenBatchNormStatistics, b.frozenBatchNormStatistics) { $0 ? "moving" : "per batch" }
        if c.isEmpty, a != b { c.append(.init(.model, saved: "\(a)", now: "\(b)")) }
        return c
    }
}

extension LearningRateSchedule {
    /// As `--schedule` spells it.
    var summary: String {
        switch self {
        case .constant: return "constant"
        case let .step(every, factor): return "step:\(every):\(factor)"
        case let .cosine(epochs, floor): return "cosine:\(floor) over \(epochs) epochs"
        }
    }
}
