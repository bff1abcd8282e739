import Foundation

/// A setting of a run that an error can say is wrong. The library names it in words; the CLI
/// names it by its flag (VGGTLCLI/FlagWording.swift).
public enum Setting: String, Codable, Sendable, CaseIterable {
    case inputSize, batch, learningRate, momentum, weightDecay, schedule, unfreeze, freezeFirst
    case device, weights, naming, checkpoint, tensorboard, benchmarkCase
    case threads, stepTimeout, syncBatchNorm, gradientCompression

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
        }
    }
}
