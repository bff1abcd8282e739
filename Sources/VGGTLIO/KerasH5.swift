import CHDF5
import Foundation
import VGGTLTensors

/// Keras HDF5 weight files, read the way Keras 2's `load_weights` reads them: the root attribute
/// `layer_names` lists the layers, each layer group's `weight_names` lists its datasets by path
/// relative to the group. That covers the Keras 2 layout (`block1_conv1/block1_conv1/kernel:0`),
/// the Keras 1 layout of the files Keras Applications downloads (`block1_conv1/block1_conv1_W_1:0`),
/// and model.save() files (the same under the group `model_weights`, also what Keras 3 writes for
/// model.save('x.h5')). Keras 3's `.weights.h5` (`layers/conv2d/vars/0`) is a clear error.
///
/// Writes Keras 2's save_weights layout; `legacyNaming` writes the Keras 1 naming instead.
public enum KerasH5 {
    static let format = "Keras HDF5"
    static let modelDefinitionKeys: Set<String> = ["model_config", "training_config"]

    public struct WriteOptions {
        /// Keras 1 names (`block1_conv1_W_1:0`, flat in the layer group) as in the
        /// older Keras Applications downloads, instead of Keras 2's `block1_conv1/kernel:0`.
        public var legacyNaming = false
        /// Variable-length UTF-8 string attributes (what h5py writes for Python str lists) instead
        /// of fixed-length NUL-padded ones (NumPy bytes arrays, what Keras 2 writes).
        public var variableLengthStrings = false
        /// The full `layer_names` list, weightless layers included (input_1, block1_pool, ...);
        /// default: the layers of the set in order. Every layer of the set must be in it.
        public var layerNames: [String]?
        /// Put the layers under the group `model_weights`, as model.save() does.
        public var modelWeightsGroup = false
        public init(legacyNaming: Bool = false, variableLengthStrings: Bool = false, layerNames: [String]? = nil, modelWeightsGroup: Bool = false) {
            self.legacyNaming = legacyNaming; self.variableLengthStrings = variableLengthStrings
            self.layerNames = layerNames; self.modelWeightsGroup = modelWeightsGroup
        }
    }

    // MARK: reading

    /// Reads a file somewhere libhdf5 cannot harm this process. libhdf5 can crash (SIGSEGV) or
    /// loop forever on some damaged files, which nothing inside the process survives; the vggtl
    /// CLI sets this to read .h5 files in a child process. nil (library users, tests): read here.
    public struct Isolation {
        public var read: (URL) throws -> WeightSet
        public var describe: (URL) throws -> (entries: [WeightFileEntry], metadata: [String: String])
        public init(read: @escaping (URL) throws -> WeightSet,
                    describe: @escaping (URL) throws -> (entries: [WeightFileEntry], metadata: [String: String])) {
            self.read = read; self.describe = describe
        }
    }
    /// nonisolated(unsafe): set once by a program before it reads any file or starts a thread
    /// (the CLI, first thing in `runVGGTL`), and only read after that.
    nonisolated(unsafe) public static var isolation: Isolation?

    /// Every weight of every layer in `layer_names` order, with canonical names (through
    /// `isolation` when it is set).
    public static func read(_ url: URL) throws -> WeightSet {
        if let isolation { return try isolation.read(url) }
        return try readHere(url)
    }

    /// Names, shapes and dtypes without reading values (through `isolation` when it is set).
    public static func describe(_ url: URL) throws -> (entries: [WeightFileEntry], metadata: [String: String]) {
        if let isolation { return try isolation.describe(url) }
        return try describeHere(url)
    }

    /// `read` in this process.
    public static func readHere(_ url: URL) throws -> WeightSet {
        try HDF5.locked {
            let f = try H5File(reading: url)
            var set = WeightSet(source: url.path)
            let root = try f.root()
            // model.save() files also hold the model's JSON definition: not weight metadata.
            set.metadata = try f.scalarStringAttributes(root, of: "the root group").filter { !modelDefinitionKeys.contains($0.key) }
            try walk(f) { stored, name, loc in
                let (shape, _, values) = try f.readFloats(loc, stored)
                set.tensors.append((name, shape, values))
            }
            try checkUnique(set.names, file: url.path)
            return set
        }
    }

    /// `describe` in this process.
    public static func describeHere(_ url: URL) throws -> (entries: [WeightFileEntry], metadata: [String: String]) {
        try HDF5.locked {
            let f = try H5File(reading: url)
            let root = try f.root()
            let metadata = try f.scalarStringAttributes(root, of: "the root group").filter { $0.value.utf8.count < 200 }
            var entries: [WeightFileEntry] = []
            try walk(f) { stored, name, loc in
                let (shape, dtype, _) = try f.datasetInfo(loc, stored)
                entries.append(WeightFileEntry(storedName: stored, name: name, shape: shape, dtype: dtype))
            }
            return (entries, metadata)
        }
    }

    /// Calls `visit(datasetPath, canonicalName, group)` for each weight in Keras' order.
    static func walk(_ f: H5File, _ visit: (String, String, H5ID) throws -> Void) throws {
        let root = try f.root()
        var container = root
        var containerName = "the root group"
        var layerNames = try f.readChunkedStrings(root, "layer_names", of: containerName)
        if layerNames == nil, f.isGroup(root, "model_weights") {
            container = try f.openGroup(root, "model_weights")
            containerName = "group model_weights"
            layerNames = try f.readChunkedStrings(container, "layer_names", of: containerName)
        }
        guard let layerNames else {
            if f.isGroup(root, "layers") || f.isGroup(root, "_layer_checkpoint_dependencies") {
                throw VGGTLError.unsupportedFile(file: f.path, reason: "it is a Keras 3 .weights.h5 file, which names layers by class and position "
                    + "(conv2d, conv2d_1, ...) rather than by layer name, so its weights cannot be matched to layers; from Keras 3 save "
                    + "model.save('model.h5') (the HDF5 layout read here), or model.save_weights('weights.h5') from Keras 2")
            }
            throw VGGTLError.unsupportedFile(file: f.path, reason: "it is an HDF5 file without Keras' layer_names attribute, so not a Keras weights file; "
                + "save weights from Keras with model.save_weights('weights.h5')")
        }
        for layer in layerNames {
            guard f.isGroup(container, layer) else {
                throw VGGTLError.corruptFile(file: f.path, format: format, reason: "layer_names lists \(layer) but \(containerName) has no group \(layer)")
            }
            let group = try f.openGroup(container, layer)
            let weightNames = try f.readChunkedStrings(group, "weight_names", of: "layer \(layer)") ?? []
            for (k, stored) in weightNames.enumerated() {
                guard f.exists(group, stored) else {
                    throw VGGTLError.corruptFile(file: f.path, format: format, reason: "layer \(layer) lists weight \(stored) but has no dataset \(layer)/\(stored)")
                }
                try visit(stored, canonicalName(layer: layer, weight: stored, index: k, count: weightNames.count), group)
            }
        }
    }

    /// Our name for a Keras weight: "block1_conv1/kernel:0" -> "block1_conv1/kernel";
    /// "vgg16/block1_conv1/kernel:0" (a nested model) -> "block1_conv1/kernel";
    /// Keras 1 "block1_conv1_W_1:0" -> "block1_conv1/kernel" (by suffix, else by position).
    static func canonicalName(layer: String, weight: String, index: Int, count: Int) -> String {
        var base = Substring(weight)
        if let colon = base.lastIndex(of: ":"), base[base.index(after: colon)...].allSatisfy(\.isNumber) { base = base[..<colon] }
        let parts = base.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count >= 2 {
            var owner = String(parts[parts.count - 2])
            // TensorFlow makes variable scopes unique ("block1_conv1_1/kernel"); the layer is "block1_conv1".
            if owner != layer, owner.hasPrefix(layer + "_"), owner.dropFirst(layer.count + 1).allSatisfy(\.isNumber) { owner = layer }
            return "\(owner)/\(parts[parts.count - 1])"
        }
        var rest = Substring(base)
        if rest.hasPrefix(layer + "_") { rest = rest.dropFirst(layer.count + 1) }
        if let u = rest.lastIndex(of: "_"), rest[rest.index(after: u)...].allSatisfy(\.isNumber), rest.index(after: u) < rest.endIndex {
            rest = rest[..<u]
        }
        let legacy: [String: String] = ["W": "kernel", "b": "bias", "kernel": "kernel", "bias": "bias", "gamma": "gamma", "beta": "beta",
                                        "running_mean": "moving_mean", "running_std": "moving_variance", "running_var": "moving_variance",
                                        "moving_mean": "moving_mean", "moving_variance": "moving_variance"]
        return "\(layer)/\(legacy[String(rest)] ?? positionalName(index, count: count))"
    }

    /// Keras' weight order: conv/dense kernel, bias; BatchNormalization gamma, beta, moving_mean, moving_variance.
    static func positionalName(_ index: Int, count: Int) -> String {
        switch count {
        case 1, 2: return ["kernel", "bias"][index]
        case 4: return ["gamma", "beta", "moving_mean", "moving_variance"][index]
        default: return "weight\(index)"
        }
    }

    static func checkUnique(_ names: [String], file: String) throws {
        var seen = Set<String>()
        for n in names where !seen.insert(n).inserted {
            throw VGGTLError.corruptFile(file: file, format: format, reason: "two weights map to the name \(n)")
        }
    }

    // MARK: writing

    /// Keras 2 save_weights layout: root attributes layer_names, backend, keras_version; a group
    /// per layer with attribute weight_names; datasets `layer/layer/kernel:0`. Other metadata
    /// entries become root string attributes. Written to a temporary file, then renamed.
    public static func write(_ w: WeightSet, to url: URL, options: WriteOptions = WriteOptions()) throws {
        try w.validate(for: url.path)
        var byLayer: [String: [(weight: String, shape: [Int], values: [Float])]] = [:]
        for t in w.tensors {
            guard let slash = t.name.firstIndex(of: "/"), slash != t.name.startIndex, t.name.index(after: slash) != t.name.endIndex else {
                throw VGGTLError.notLayerNamed(file: url.path, tensor: t.name)
            }
            byLayer[String(t.name[..<slash]), default: []].append((String(t.name[t.name.index(after: slash)...]), t.shape, t.values))
        }
        let layers = options.layerNames ?? w.layerNames
        for l in w.layerNames where !layers.contains(l) {
            throw VGGTLError.invalidArgument("\(url.path): layer \(l) has weights but is not in layerNames")
        }
        let temp = AtomicFileWriter.temporaryURL(beside: url)
        do {
            try HDF5.locked {
                let f = try H5File(creating: temp)
                do {
                    let root = try f.root()
                    let container = options.modelWeightsGroup ? try f.createGroup(root, "model_weights") : root
                    let strings = options.variableLengthStrings
                    try f.writeStrings(container, "layer_names", layers, variableLength: strings)
                    var meta = w.metadata
                    let backend = meta.removeValue(forKey: "backend") ?? "tensorflow"
                    let version = meta.removeValue(forKey: "keras_version") ?? "2.15.0"
                    for (name, value) in meta where name.hasPrefix("layer_names") || value.utf8.count > 60_000 {
                        throw VGGTLError.invalidArgument("\(url.path): metadata entry '\(name)' cannot be an HDF5 root attribute "
                            + (name.hasPrefix("layer_names") ? "(Keras uses that name)" : "(\(value.utf8.count) bytes; the limit is 64 KiB)") + "; remove it or save as .safetensors")
                    }
                    for (name, value) in [("backend", backend), ("keras_version", version)] + meta.sorted(by: { $0.key < $1.key }) {
                        try f.writeStrings(root, name, [value], variableLength: strings, scalar: true)
                        if options.modelWeightsGroup, name == "backend" || name == "keras_version" {
                            try f.writeStrings(container, name, [value], variableLength: strings, scalar: true)
                        }
                    }
                    for layer in layers {
                        let g = try f.createGroup(container, layer)
                        let weights = byLayer[layer] ?? []
                        let stored = weights.map { options.legacyNaming ? legacyName(layer: layer, weight: $0.weight) : "\(layer)/\($0.weight):0" }
                        try f.writeStrings(g, "weight_names", stored, variableLength: strings)
                        for (t, path) in zip(weights, stored) { try f.writeFloats(g, path, shape: t.shape, values: t.values) }
                    }
                }
                try f.close()
            }
            try AtomicFileWriter.publish(temp, as: url)
        } catch {
            unlink(temp.path)
            throw error
        }
    }

    static func legacyName(layer: String, weight: String) -> String {
        let short = ["kernel": "W", "bias": "b", "moving_mean": "running_mean", "moving_variance": "running_std"][weight] ?? weight
        return "\(layer)_\(short)_1:0"
    }
}
