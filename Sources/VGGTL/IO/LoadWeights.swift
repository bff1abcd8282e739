import Foundation

/// Copies the weights of `w` into the layers with the same names ("block1_conv1/kernel") and
/// checks every shape first: on any error nothing is changed. PyTorch names are mapped first
/// (`TorchVGG16.toKeras`). Tensors of the file that no layer has are ignored (a full VGG16 file
/// loads into a notop model). Weights of the model that the file lacks are an error unless
/// `skipMissing` (e.g. a new head on an ImageNet trunk): they keep their current values and are
/// listed in `skipped`. A file that matches nothing is always an error.
@discardableResult
public func loadWeights(_ w: WeightSet, into layers: [Layer], skipMissing: Bool = false) throws -> (loaded: [String], skipped: [String]) {
    let set = TorchVGG16.looksLikeTorch(w) ? try TorchVGG16.toKeras(w) : w
    let file = set.sourceDescription
    var index: [String: Int] = [:]
    for (i, t) in set.tensors.enumerated() where index[t.name] == nil { index[t.name] = i }
    var plan: [(target: NamedTensor, source: Int)] = []
    var missing: [String] = []
    for layer in layers {
        for target in layer.weights {
            guard let i = index[target.name] else { missing.append(target.name); continue }
            let t = set.tensors[i]
            guard t.shape == target.tensor.shape else {
                throw VGGTLError.weightShapeMismatch(file: file, tensor: target.name, fileShape: t.shape, modelShape: target.tensor.shape)
            }
            guard t.values.count == target.tensor.count else {
                throw VGGTLError.corruptFile(file: file, format: "weights", reason: "\(t.name) has \(t.values.count) values for shape \(t.shape)")
            }
            plan.append((target, i))
        }
    }
    if !missing.isEmpty, !skipMissing || plan.isEmpty {
        throw VGGTLError.missingWeights(file: file, tensors: missing, fileLayers: set.layerNames)
    }
    for (target, i) in plan {
        target.tensor.upload(set.tensors[i].values)
    }
    return (plan.map(\.target.name), missing)
}

/// Reads a weights file (any format, Keras or PyTorch names) and loads it into `layers`.
@discardableResult
public func loadWeights(from url: URL, into layers: [Layer], skipMissing: Bool = false) throws -> (loaded: [String], skipped: [String]) {
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
