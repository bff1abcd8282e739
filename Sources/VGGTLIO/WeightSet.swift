import Foundation
import VGGTLTensors

/// Named arrays read from or written to a weights file, whatever its format. Names are ours
/// (Keras' without ":0"): "block1_conv1/kernel", "bn/moving_mean"; a set read from a PyTorch
/// file keeps torch names ("features.0.weight") until they are mapped onto a model's layers.
public struct WeightSet {
    public var tensors: [(name: String, shape: [Int], values: [Float])]
    public var metadata: [String: String]
    /// The file it was read from, for error messages; nil for a set built in memory.
    public var source: String?

    public init(tensors: [(name: String, shape: [Int], values: [Float])] = [], metadata: [String: String] = [:], source: String? = nil) {
        self.tensors = tensors; self.metadata = metadata; self.source = source
    }

    public var names: [String] { tensors.map(\.name) }
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.values.count } }

    public subscript(name: String) -> (shape: [Int], values: [Float])? {
        tensors.first { $0.name == name }.map { ($0.shape, $0.values) }
    }

    /// The names before "/", in order of first appearance ("block1_conv1" for "block1_conv1/kernel").
    public var layerNames: [String] {
        var seen = Set<String>(), out: [String] = []
        for t in tensors {
            let layer = layerName(of: t.name)
            if seen.insert(layer).inserted { out.append(layer) }
        }
        return out
    }

    /// The file, or "weights in memory", for error messages.
    public var sourceDescription: String { source ?? "weights in memory" }

    /// Every tensor's value count matches its shape and names are unique.
    public func validate(for file: String) throws {
        var seen = Set<String>()
        for t in tensors {
            guard seen.insert(t.name).inserted else { throw VGGTLError.invalidArgument("\(file): tensor name \(t.name) appears twice") }
            guard checkedElementCount(t.shape) == t.values.count else {
                throw VGGTLError.shapeMismatch(what: "\(file): tensor \(t.name) values", expected: t.shape, got: [t.values.count])
            }
        }
    }
}

/// "block1_conv1" for "block1_conv1/kernel".
public func layerName(of tensor: String) -> String {
    tensor.firstIndex(of: "/").map { String(tensor[..<$0]) } ?? tensor
}

public enum WeightFormat: String, CaseIterable, Sendable {
    case h5, safetensors

    /// From a file name: .h5/.hdf5/.keras-weights -> h5, .safetensors/.st -> safetensors.
    public init?(pathExtension ext: String) {
        switch ext.lowercased() {
        case "h5", "hdf5", "he5": self = .h5
        case "safetensors", "st": self = .safetensors
        default: return nil
        }
    }
}

/// One array in a weights file as stored (for `vggtl weights inspect`).
public struct WeightFileEntry: Codable {
    /// The name in the file: an HDF5 dataset path or a safetensors key.
    public var storedName: String
    /// Our name for it (Keras' without ":0"); torch names stay as they are.
    public var name: String
    public var shape: [Int]
    /// "float32", "float16", "bfloat16", "float64", "int64", ...
    public var dtype: String
}

public struct WeightFileSummary {
    public var format: WeightFormat
    public var entries: [WeightFileEntry]
    public var metadata: [String: String]
}

/// Reading and writing weight files, whatever the format: the format is detected from the
/// file's first bytes, not its name.
public enum WeightFile {
    static let hdf5Signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]

    /// HDF5 (signature at 0, 512, 1024, 2048, ...) or safetensors (an 8-byte length, then '{').
    public static func detectFormat(_ url: URL) throws -> WeightFormat {
        let f = try BinaryFileReader(url, format: "weights")
        var offset = 0
        while offset + 8 <= f.size {
            if try f.prefix(at: offset, count: 8) == hdf5Signature { return .h5 }
            offset = offset == 0 ? 512 : offset * 2
        }
        let head = try f.prefix(at: 0, count: 16)
        if head.count >= 9, head[8] == UInt8(ascii: "{") { return .safetensors }
        if head.starts(with: NPY.magic) {
            throw VGGTLError.unsupportedFile(file: url.path, reason: "it is a NumPy .npy array, not a weights file; weights are Keras .h5 or .safetensors files")
        }
        if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) {
            throw VGGTLError.unsupportedFile(file: url.path, reason: "it is a zip archive (a PyTorch .pt/.pth checkpoint or a Keras 3 .keras file). "
                + "Convert a PyTorch state dict with `from safetensors.torch import save_file; save_file(torch.load(path), 'weights.safetensors')`; "
                + "from Keras save the weights with model.save_weights('weights.h5')")
        }
        if head.count < 9 {
            throw VGGTLError.unsupportedFile(file: url.path, reason: "it has only \(head.count) bytes: too short to be a Keras .h5 or a safetensors file")
        }
        throw VGGTLError.unsupportedFile(file: url.path, reason: "it is neither an HDF5 (Keras .h5) nor a safetensors file (first bytes \(head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")))")
    }

    /// Loads every tensor as Float with the file's names (Keras names made canonical; torch
    /// names as they are).
    public static func load(_ url: URL) throws -> WeightSet {
        switch try detectFormat(url) {
        case .h5: return try KerasH5.read(url)
        case .safetensors: return try Safetensors.read(url)
        }
    }

    /// Names, shapes and dtypes without reading the values.
    public static func describe(_ url: URL) throws -> WeightFileSummary {
        switch try detectFormat(url) {
        case .h5:
            let (entries, metadata) = try KerasH5.describe(url)
            return WeightFileSummary(format: .h5, entries: entries, metadata: metadata)
        case .safetensors:
            let (entries, metadata) = try Safetensors.describe(url)
            return WeightFileSummary(format: .safetensors, entries: entries, metadata: metadata)
        }
    }

    /// Writes atomically (temporary file, fsync, rename). h5 is Keras 2's save_weights layout.
    public static func save(_ w: WeightSet, to url: URL, format: WeightFormat) throws {
        switch format {
        case .h5: try KerasH5.write(w, to: url)
        case .safetensors: try Safetensors.write(w, to: url)
        }
    }

    /// `save` with the format taken from the file extension (.h5 or .safetensors).
    public static func save(_ w: WeightSet, to url: URL) throws {
        guard let format = WeightFormat(pathExtension: url.pathExtension) else {
            throw VGGTLError.invalidArgument("\(url.path): cannot tell the weights format from the extension '.\(url.pathExtension)'; use .h5 or .safetensors")
        }
        try save(w, to: url, format: format)
    }
}

/// Metadata vggtl writes into weight files (safetensors `__metadata__`, HDF5 root attributes) so
/// that what the weights expect travels with them through `vggtl weights convert`.
public enum WeightMetadata {
    /// caffe | torch | rescale: how images must be preprocessed for these weights.
    public static let preprocessing = "vggtl.preprocessing"
    /// "HxW": the input size the weights were trained or exported at.
    public static let inputSize = "vggtl.input_size"
    /// The trunk the tensors belong to (vgg16, vgg16-bn, resnet50, resnet50-torchvision, ...).
    public static let trunk = "vggtl.trunk"
    /// The Keras names of the dense layers on the trunk, in order ("dense,predictions"), kept
    /// with torch names, whose classifier.N say only the order: back in Keras names, the head
    /// gets its own names again.
    public static let head = "vggtl.head"
    /// How a run's predictions layer reads: "softmax" (one class per image), "sigmoid" (one
    /// unit for two classes) or "sigmoid-multi-label" (one unit per label, several per image).
    public static let predictions = "vggtl.predictions"
}
