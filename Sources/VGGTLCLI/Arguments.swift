import ArgumentParser
import VGGTLTensors
import VGGTLBackends
import VGGTLNN
import VGGTLOptim
import VGGTLData
import VGGTLIO
import VGGTLModels
import VGGTLTrain
import VGGTLDistributed

// The closed sets of values that flags take. The parser rejects any other value with the list
// of those it accepts, and `--help` lists them with what each means. The library knows nothing
// of ArgumentParser: its types become flag values here.

/// A string enum whose cases are a flag's values, matched whatever their case (`--optimizer Adam`).
public protocol CaseArgument: ExpressibleByArgument, CaseIterable, RawRepresentable where RawValue == String {}

extension CaseArgument {
    public init?(argument: String) { self.init(rawValue: argument.lowercased()) }
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
    public var defaultValueDescription: String { rawValue }
}

/// `--model`: the backbones of the registry ("none", a head on features, is none of them).
extension ModelConfig.Trunk: ExpressibleByArgument {
    public init?(argument: String) {
        guard let backbone = Backbones.all.first(where: { $0.trunk.rawValue == argument.lowercased() }) else { return nil }
        self = backbone.trunk
    }
    public static var allValueStrings: [String] { Backbones.names }
    public static var allValueDescriptions: [String: String] {
        Dictionary(uniqueKeysWithValues: Backbones.all.map { ($0.trunk.rawValue, $0.title) })
    }
    public var defaultValueDescription: String { rawValue }
}

extension OptimizerSpec.Kind: ExpressibleByArgument, CaseArgument {
    public static var allValueDescriptions: [String: String] {
        ["sgd": "SGD (--momentum, --nesterov)", "adam": "Adam", "rmsprop": "RMSprop"]
    }
}

extension ModelConfig.Pooling: ExpressibleByArgument, CaseArgument {
    public static var allValueDescriptions: [String: String] {
        ["flatten": "Flatten the trunk's output (the VGG16 tutorials)", "gap": "global average pooling"]
    }
}

extension Preprocessing: ExpressibleByArgument, CaseArgument {
    public static var allValueDescriptions: [String: String] {
        ["caffe": "Keras VGG16/ResNet50 preprocess_input", "torch": "torchvision: 1/255, then the ImageNet mean and std",
         "tf": "Keras InceptionV3: x/127.5 - 1", "rescale": "1/255"]
    }
}

extension GradientCompression: ExpressibleByArgument, CaseArgument {
    public static var allValueDescriptions: [String: String] {
        ["none": "float32",
         "fp16": "half floats: half the bytes, 11 significant bits, range +-65504 (an overflow stops the job with a message)"]
    }
}

extension WeightFormat: ExpressibleByArgument, CaseArgument {
    public static var allValueDescriptions: [String: String] { ["h5": "Keras HDF5", "safetensors": "safetensors"] }
}

/// `--augment`: the presets of `Augmentation.presets`.
enum AugmentPreset: String, CaseArgument {
    case keras, cifar, none
    var augmentation: Augmentation { Augmentation.presets[rawValue]! }
    static var allValueDescriptions: [String: String] {
        ["keras": "the tutorials' ImageDataGenerator (rotation 40, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip)",
         "cifar": "the CIFAR-10 recipe (pad 4 px and crop back at a random offset, horizontal flip)", "none": "no augmentation"]
    }
}

/// `--naming`: the tensor names a converted weights file gets.
enum Naming: String, CaseArgument {
    case keras, torch
    static var allValueDescriptions: [String: String] { ["keras": "Keras layer names", "torch": "PyTorch (torchvision) names"] }
}

/// `--checkpoint`: which checkpoint of a run folder.
enum CheckpointName: String, CaseArgument {
    case best, last
    static var allValueDescriptions: [String: String] { ["best": "the epoch with the lowest val_loss", "last": "the last epoch"] }
}

/// `--device`: cpu | opencl | opencl:N | auto.
extension DeviceChoice: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
    public static var allValueStrings: [String] { ["cpu", "opencl", "opencl:N", "auto"] }
    public static var allValueDescriptions: [String: String] {
        ["cpu": "the CPU (OpenBLAS)", "opencl": "the first OpenCL device", "opencl:N": "OpenCL device N (`vggtl devices` lists them)",
         "auto": "a GPU if there is one, else the CPU"]
    }
    public var defaultValueDescription: String { description }
}

/// `--schedule`. A cosine spans the epochs of the stage it runs in (`LearningRateSchedule.over`).
extension LearningRateSchedule: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument, epochs: 0) }
    public static var allValueStrings: [String] { ["constant", "step:EVERY:FACTOR", "cosine[:FLOOR]"] }
    public static var allValueDescriptions: [String: String] {
        ["constant": "the learning rate throughout", "step:EVERY:FACTOR": "times FACTOR every EVERY epochs (step:10:0.1)",
         "cosine[:FLOOR]": "cosine decay over the epochs to FLOOR times the rate (default 0)"]
    }
    public var defaultValueDescription: String {
        switch self {
        case .constant: return "constant"
        case let .step(every, factor): return "step:\(every):\(factor)"
        case let .cosine(_, floor): return floor == 0 ? "cosine" : "cosine:\(floor)"
        }
    }
}

/// A value the parser rejects, in vggtl's one-line form: ArgumentParser lists six or more
/// allowed values one per line ("Please provide one of the following:\n  - a\n  - b").
func oneLineValueError(_ message: String) -> String {
    let lines = message.split(separator: "\n").map(String.init)
    let header = "the following:"
    guard let first = lines.first, first.hasSuffix(header), lines.count > 1 else { return message }
    let values = lines.dropFirst().map { line in "'\(line.drop { $0 == " " || $0 == "-" })'" }
    return first.dropLast(header.count) + values.dropLast().joined(separator: ", ") + " or \(values.last!)."
}
