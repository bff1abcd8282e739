import VGGTLNN

extension Model {
    /// A Keras-style summary: every layer of Keras' `model.layers` with its index (the InputLayer
    /// is 0, as `--freeze-first` counts), type, output shape, parameters, trainable, and for
    /// graphs the layers it is connected to; then Keras' totals. `trunkOnly`: the trunk alone,
    /// as Keras' `include_top=False` model prints it.
    public func summary(batchLabel: String = "None", trunkOnly: Bool = false) throws -> String {
        let shapes = try network.shapes([1] + config.inputShape)
        let keras = trunkOnly ? kerasLayers.filter { $0.node.index <= trunkOutput.index } : kerasLayers
        let chain = network.nodes.allSatisfy { network.inputs(of: $0) == [Graph.Node(index: $0.index - 1)] }
        var header = ["#", "Layer (type)", "Output Shape", "Param #", "Trainable"]
        if !chain { header.append("Connected to") }
        var rows = [header]
        var total = 0, trainableCount = 0
        for (i, k) in keras.enumerated() {
            let shape = "(\(batchLabel), " + shapes[k.node.index].dropFirst().map(String.init).joined(separator: ", ") + ")"
            let params = k.layer?.weights.reduce(0) { $0 + $1.tensor.count } ?? 0
            let trainableParams = k.layer?.parameters.filter(\.trainable).reduce(0) { $0 + $1.value.count } ?? 0
            total += params; trainableCount += trainableParams
            let trainable = k.layer.map { $0.parameters.isEmpty ? "-" : ($0.trainable ? "yes" : "no") } ?? "-"
            var row = ["\(i)", "\(k.name) (\(k.type))", shape, "\(params)", trainable]
            if !chain { row.append(network.inputs(of: k.node).map { network.layer(at: $0)?.name ?? "input" }.joined(separator: ", ")) }
            rows.append(row)
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max()! + 3 }
        func line(_ r: [String]) -> String {
            r.enumerated().map { $0 == r.count - 1 ? $1 : $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined()
        }
        let rule = String(repeating: "=", count: widths.dropLast().reduce(0, +) + 14)
        var out = [line(rows[0]), rule] + rows.dropFirst().map(line)
        out += [rule,
                "Total params: \(grouped(total))",
                "Trainable params: \(grouped(trainableCount))",
                "Non-trainable params: \(grouped(total - trainableCount))"]
        if let backbone, !trunkOnly {
            let trunk = trunkLayers
            let trunkParams = trunk.reduce(0) { $0 + $1.weights.reduce(0) { $0 + $1.tensor.count } }
            out.append("\(backbone.title) trunk (Keras include_top=False): \(trunk.count + 1) layers with the InputLayer, \(grouped(trunkParams)) params")
        }
        return out.joined(separator: "\n")
    }

}

/// 14714688 -> "14,714,688"
func grouped(_ n: Int) -> String {
    let s = String(n)
    var out = ""
    for (i, ch) in s.enumerated() {
        if i > 0, (s.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return out
}
