import Foundation

/// A setting of a run that an error can say is wrong. The library names it in words; the CLI
/// names it by its flag (VGGTLCLI/FlagWording.swift).
public enum Setting: String, Codable, Sendable, CaseIterable {
    case inputSize, batch, learningRate, momentum, weightDecay, schedule, unfreeze, freezeFirst
    case device, weights, naming, checkpoint, tensorboard, benchmarkCase
    case threads, stepTimeout, syncBatchNorm, gradientCompression
    // What a run's checkpoint records and a resume compares.
    case model, headPooling, headHidden, headDropout, includeTop, batchNormStatistics
    case preprocessing, trainingData, optimizer, nesterov, epochs, accumulate, classWeight, sampler, batchNormRecalibration

    /// The setting in words, for messages.
    public var title: String {
        switch self {
        case .inputSize: return "input size"
        case .batch: return "batch size"
        case .learningRate: return "learning rate"
        case .momentum: return "momentum"
        case .weightDecay: return "weight decay"
        case .schedule: return "learning-rate schedule"
        case .unfreeze: return "layers to unfreeze"
        case .freezeFirst: return "number of layers to freeze"
        case .device: return "device"
        case .weights: return "weights"
        case .naming: return "weight naming"
        case .checkpoint: return "checkpoint"
        case .tensorboard: return "TensorBoard folder"
        case .benchmarkCase: return "benchmark case"
        case .threads: return "CPU threads"
        case .stepTimeout: return "step timeout"
        case .syncBatchNorm: return "BatchNorm statistics over all ranks"
        case .gradientCompression: return "gradient compression"
        case .model: return "model"
        case .headPooling: return "head pooling"
        case .headHidden: return "hidden units of the head"
        case .headDropout: return "dropout of the head"
        case .includeTop: return "Keras' top"
        case .batchNormStatistics: return "BatchNorm statistics"
        case .preprocessing: return "preprocessing"
        case .trainingData: return "training data"
        case .optimizer: return "optimizer"
        case .nesterov: return "Nesterov momentum"
        case .epochs: return "epochs"
        case .accumulate: return "batches accumulated per optimiser step"
        case .classWeight: return "class weights"
        case .sampler: return "sampler"
        case .batchNormRecalibration: return "BatchNorm recalibration"
        }
    }
}

/// A setting with another value than the one recorded where it is compared (a run's checkpoint
/// on resume, a top model's head): both values in words.
public struct SettingChange: Codable, Equatable, Sendable {
    public var setting: Setting
    /// The recorded value, and the one asked for now.
    public var saved: String, now: String

    public init(_ setting: Setting, saved: String, now: String) {
        self.setting = setting; self.saved = saved; self.now = now
    }

    /// "learning rate 0.01 -> 0.001".
    public var description: String { "\(setting.title) \(saved) -> \(now)" }
}
