import Foundation
import VGGTLTensors
import VGGTLNN
import VGGTLIO

/// What a load did: weights copied, model weights the file lacks (kept as they were), and the
/// file's tensors left out because their layer starts fresh ("predictions/kernel [4096,10],
/// the model has [256,3]").
public struct WeightLoadReport {
    public var loaded: [String] = []
    public var skipped: [String] = []
    public var mismatched: [String] = []
    /// The file's layers renamed to ours because they were paired by order (Keras'
    /// load_weights: the official InceptionV3 file's conv2d_1 is our conv2d); empty when the
    /// names matched.
    public var pairedByOrder: [(file: String, model: String)] = []
    /// Torch tensors left out on purpose (Inception3's AuxLogits.*), and why ("of the auxiliary classifier ...").
    public var leftOut: [String] = []
    public var leftOutReason = ""

    /// The lines a load owes the user: layers paired by order (names not ours) and torch
    /// tensors left out. `file`: the weights file's path.
    public func notes(file: String) -> [String] {
        let name = URL(fileURLWithPath: file).lastPathComponent
        var lines: [String] = []
        if let first = pairedByOrder.first {
            lines.append("\(name): its layer names are not ours (\(first.file) for our \(first.model), ...): \(pairedByOrder.count) layers paired by order, as Keras' load_weights does")
        }
        if !leftOut.isEmpty {
            lines.append("\(name): left out \(leftOut.count) tensors \(leftOutReason)")
        }
        return lines
    }
}

/// Copies the weights of `w` into the layers with the same names ("block1_conv1/kernel") and
/// checks every shape first: on any error nothing is changed. PyTorch names are mapped first
/// (`TorchNames.toKeras`); errors then name the torch tensor and shapes as the user has them.
///
/// Keras files whose layer names are not ours are paired by order, as Keras' `load_weights`
/// does: the file's layers (in its `layer_names` order) with the layers of `layers` that must
/// load (in the order given: pass Keras' `model.layers` order, `Model.kerasOrderedLayers`). Every
/// pair must have the same weights and shapes; layers of the file after those keep their names
/// (a top: `predictions`). Names number unnamed layers per Keras session, so the official
/// InceptionV3 file's `conv2d_1` is a fresh model's `conv2d`.
/// Tensors of the file that no layer has are ignored (a full VGG16 file loads into a notop
/// model), except BatchNorm tensors of a convolution that is loaded without its BatchNorm: that
/// would silently compute something else, so it is an error.
///
/// Weights of the model that the file lacks are an error unless `skipMissing`, or unless
/// `mayStartFresh` says their layer may start fresh (a new head on a pretrained trunk). When the
/// file's tensors do not fit such a layer (a 1000-class head for a 3-class task), every layer
/// that may start fresh does (the head as a whole, as Keras' include_top=False) and the
/// report lists why in `mismatched`. A file that matches nothing is always an error.
@discardableResult
public func loadWeights(_ w: WeightSet, into layers: [Layer], skipMissing: Bool = false,
                        mayStartFresh: ((String) -> Bool)? = nil) throws -> WeightLoadReport {
    let torch = TorchNames.looksLikeTorch(w)
    var set = torch ? try TorchNames.toKeras(w) : w
    let origins = torch ? try TorchNames.origins(of: w) : [:]
    let file = set.sourceDescription
    var pairs: [(file: String, model: String)] = []
    if !torch, !skipMissing {
        let required = layers.filter { !$0.weights.isEmpty && !(mayStartFresh?($0.name) ?? false) }
        (set, pairs) = try pairedByOrder(set, required)
    }
    var index: [String: Int] = [:]
    for (i, t) in set.tensors.enumerated() where index[t.name] == nil { index[t.name] = i }
    var plan: [(target: NamedTensor, source: Int, layer: String)] = []
    var missing: [String] = [], mismatched: [String] = []
    for layer in layers {
        let fresh = mayStartFresh?(layer.name) ?? false
        for target in layer.weights {
            guard let i = index[target.name] else {
                if !fresh { missing.append(target.name) }
                continue
            }
            let t = set.tensors[i]
            guard t.shape == target.tensor.shape else {
                if fresh {
                    mismatched.append("\(origins[t.name]?.torch ?? t.name) \(compactShape(origins[t.name]?.torchShape ?? t.shape)), "
                                      + "the model has \(compactShape(origins[t.name]?.toTorchShape(target.tensor.shape) ?? target.tensor.shape))")
                    continue
                }
                if let o = origins[t.name] {
                    throw VGGTLError.weightShapeMismatch(file: file, tensor: "\(o.torch) (\(t.name))", fileShape: o.torchShape,
                                                         modelShape: o.toTorchShape(target.tensor.shape))
                }
                throw VGGTLError.weightShapeMismatch(file: file, tensor: target.name, fileShape: t.shape, modelShape: target.tensor.shape)
            }
            guard t.values.count == target.tensor.count else {
                throw VGGTLError.corruptFile(file: file, format: "weights", reason: "\(t.name) has \(t.values.count) values for shape \(t.shape)")
            }
            plan.append((target, i, layer.name))
        }
    }
    // The head goes as a whole: one layer that does not fit makes every fresh-able layer start fresh.
    if !mismatched.isEmpty, let mayStartFresh { plan.removeAll { mayStartFresh($0.layer) } }
    if !missing.isEmpty, !skipMissing {
        throw VGGTLError.missingWeights(file: file, tensors: missing, fileLayers: set.layerNames)
    }
    if plan.isEmpty, !layers.allSatisfy({ $0.weights.isEmpty }) {
        throw VGGTLError.missingWeights(file: file, tensors: missing.isEmpty ? layers.flatMap { $0.weights.map(\.name) } : missing,
                                        fileLayers: set.layerNames)
    }
    // A convolution loaded while its BatchNorm in the file has nowhere to go.
    let layerNames = Set(layers.map(\.name))
    let fileLayers = Set(set.layerNames)
    for conv in Set(plan.map(\.layer)).sorted() where conv.contains("_conv") {
        let bn = batchNormLayer(forConv: conv)
        if fileLayers.contains(bn), !layerNames.contains(bn) {
            throw VGGTLError.unexpectedBatchNorm(file: file, layer: bn, after: conv, found: set.layerNames)
        }
    }
    for (target, i, _) in plan {
        target.tensor.upload(set.tensors[i].values)
    }
    let leftOut = torch ? TorchNames.leftOut(names: w.names) : (tensors: [], reason: "")
    return WeightLoadReport(loaded: plan.map(\.target.name), skipped: missing, mismatched: mismatched, pairedByOrder: pairs,
                            leftOut: leftOut.tensors, leftOutReason: leftOut.reason)
}

/// The Keras name of the BatchNorm layer after convolution `conv`, as VGG16-BN and ResNet50 name
/// them: "block1_bn1" after "block1_conv1", "conv1_bn" after "conv1_conv".
func batchNormLayer(forConv conv: String) -> String { conv.replacingOccurrences(of: "_conv", with: "_bn") }

/// When some weight of `required` is not in `set` by name, the file has at least as many
/// layers, and fewer than half of its layers have our name at our position (a file named as
/// ours but incomplete stays matched by name, and its error lists what is missing): the file's first
/// layers renamed to `required`'s, pair by pair in order, each pair checked (same weights, same
/// shapes). Otherwise the set as it is.
func pairedByOrder(_ set: WeightSet, _ required: [Layer]) throws -> (WeightSet, [(file: String, model: String)]) {
    let names = Set(set.names)
    let fileLayers = set.layerNames
    guard required.contains(where: { $0.weights.contains { !names.contains($0.name) } }), fileLayers.count >= required.count,
          2 * zip(fileLayers, required).filter({ $0 == $1.name }).count < required.count else { return (set, []) }
    let file = set.sourceDescription
    var tensorsOf: [String: [(name: String, shape: [Int], values: [Float])]] = [:]
    for t in set.tensors { tensorsOf[layerName(of: t.name), default: []].append(t) }
    func weight(_ name: String) -> String { String(name.dropFirst(layerName(of: name).count + 1)) }
    func ordinal(_ n: Int) -> String {
        let suffix = (11...13).contains(n % 100) ? "th" : [1: "st", 2: "nd", 3: "rd"][n % 10] ?? "th"
        return "\(n)\(suffix)"
    }
    var out = WeightSet(metadata: set.metadata, source: set.source)
    var pairs: [(file: String, model: String)] = []
    for (k, ours) in required.enumerated() {
        let theirs = fileLayers[k]
        let fileWeights = tensorsOf[theirs] ?? []
        let where_ = "the file's \(ordinal(k + 1)) layer with weights, paired by order (Keras' load_weights; the names differ) with our \(ours.name)"
        guard fileWeights.map({ weight($0.name) }).sorted() == ours.weights.map({ weight($0.name) }).sorted() else {
            throw VGGTLError.weightsOutOfOrder(file: file, reason: "layer \(theirs) (\(where_)) has weights \(fileWeights.map { "\(weight($0.name)) \(compactShape($0.shape))" }.joined(separator: ", ")) "
                + "where ours has \(ours.weights.map { "\(weight($0.name)) \(compactShape($0.tensor.shape))" }.joined(separator: ", ")): the file holds another architecture, "
                + "or its layers are not in Keras' model.layers order", found: fileLayers)
        }
        for t in fileWeights {
            let w = weight(t.name)
            let target = ours.weights.first { weight($0.name) == w }!
            guard t.shape == target.tensor.shape else {
                throw VGGTLError.weightShapeMismatch(file: file, tensor: "\(t.name) (\(where_), whose \(w) is \(target.name))",
                                                     fileShape: t.shape, modelShape: target.tensor.shape)
            }
            out.tensors.append(("\(ours.name)/\(w)", t.shape, t.values))
        }
        if theirs != ours.name { pairs.append((theirs, ours.name)) }
    }
    let taken = Set(out.names)
    for layer in fileLayers.dropFirst(required.count) {
        for t in tensorsOf[layer] ?? [] {
            guard !taken.contains(t.name) else {
                throw VGGTLError.weightNaming(file: file, reason: "after pairing its first \(required.count) layers by order with ours, its layer \(layer) has the name of one of them", found: fileLayers)
            }
            out.tensors.append(t)
        }
    }
    return (out, pairs)
}

/// Reads a weights file (any format, Keras or PyTorch names) and loads it into `layers`.
@discardableResult
public func loadWeights(from url: URL, into layers: [Layer], skipMissing: Bool = false) throws -> WeightLoadReport {
    try loadWeights(WeightFile.load(url), into: layers, skipMissing: skipMissing)
}

/// Every saved array of the layers (BN moving statistics included), read back from the device.
public func weightSet(of layers: [Layer], metadata: [String: String] = [:]) -> WeightSet {
    var set = WeightSet(metadata: metadata)
    for layer in layers {
        for nt in layer.weights { set.tensors.append((nt.name, nt.tensor.shape, nt.tensor.toArray())) }
    }
    return set
}
