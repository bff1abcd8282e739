import VGGTLNN

/// One entry of Keras' `model.layers`: the InputLayer (no layer of ours) or a layer.
public struct KerasLayer {
    public let name: String
    /// Keras' class name: InputLayer, Conv2D, BatchNormalization, Activation, Add, ...
    public let type: String
    public let layer: Layer?
    public let node: Graph.Node
}

extension Graph {
    /// The layers in the order Keras' functional `model.layers` lists them, which is not the
    /// order they were created in: Keras sorts layers by their depth (the longest path from the
    /// layer to the output) from deepest to shallowest, and layers of equal depth by the order a
    /// depth-first walk from the output through each layer's inputs (in call order) first meets
    /// them (tf.keras' `_map_graph_network`). The InputLayer comes first. `--freeze-first N`
    /// freezes the first N of this list, as `for layer in model.layers[:N]` does.
    public func kerasLayers(inputName: String = "input_1") -> [KerasLayer] {
        var firstSeen: [Int: Int] = [:], finished = Set<Int>(), postorder: [Int] = []
        // Iterative depth-first walk: preorder index on entry, postorder on exit.
        var stack: [(node: Int, next: Int)] = [(output.index, 0)]
        firstSeen[output.index] = 0
        while let (n, next) = stack.last {
            let ins = entries[n].inputs
            if next < ins.count {
                stack[stack.count - 1].next += 1
                let p = ins[next]
                if finished.contains(p) || stack.contains(where: { $0.node == p }) { continue }
                if firstSeen[p] == nil { firstSeen[p] = firstSeen.count }
                stack.append((p, 0))
            } else {
                stack.removeLast()
                finished.insert(n)
                postorder.append(n)
            }
        }
        var depth: [Int: Int] = [:]
        for n in postorder.reversed() {
            let d = depth[n, default: 0]
            depth[n] = d
            for p in entries[n].inputs { depth[p] = max(depth[p] ?? 0, d + 1) }
        }
        let ordered = postorder.sorted { (depth[$0]!, -firstSeen[$0]!) > (depth[$1]!, -firstSeen[$1]!) }
        return ordered.map { n in
            guard let layer = entries[n].layer else { return KerasLayer(name: inputName, type: "InputLayer", layer: nil, node: Node(index: n)) }
            return KerasLayer(name: layer.name, type: kerasType(layer), layer: layer, node: Node(index: n))
        }
    }
}

/// Keras' class name for one of our layers.
public func kerasType(_ layer: Layer) -> String {
    switch layer {
    case is Conv2D: return "Conv2D"
    case is Dense: return "Dense"
    case let p as Pool2D: return p.kind == .max ? "MaxPooling2D" : "AveragePooling2D"
    case is GlobalAveragePooling2D: return "GlobalAveragePooling2D"
    case is Flatten: return "Flatten"
    case is Dropout: return "Dropout"
    case is BatchNormalization: return "BatchNormalization"
    case is ReLU: return "Activation"
    case is Add: return "Add"
    case is Concatenate: return "Concatenate"
    case is ZeroPadding2D: return "ZeroPadding2D"
    case is DepthwiseConv2D: return "DepthwiseConv2D"
    case let a as PointwiseActivation: return a.function == .relu6 ? "ReLU" : "Activation"
    default: return String(describing: type(of: layer))
    }
}
