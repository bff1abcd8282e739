extension Model {
    /// A Keras-style summary table: layer (type), output shape, params, trainable; then totals.
    public func summary(batchLabel: String = "None") throws -> String {
        try Model.summary(inputShape: config.inputShape, layers: layers, batchLabel: batchLabel)
    }

    /// The table for any layers on an input shape (e.g. the bare trunk, include_top=False).
    public static func summary(inputShape: [Int], layers: [Layer], batchLabel: String = "None") throws -> String {
        var rows: [(String, String, String, String)] = [("Layer (type)", "Output Shape", "Param #", "Trainable")]
        var shape = [1] + inputShape
        rows.append(("input (InputLayer)", "(\(batchLabel), \(inputShape.map(String.init).joined(separator: ", ")))", "0", "-"))
        var total = 0, trainableCount = 0
        for layer in layers {
            shape = try layer.outputShape(shape)
            let params = layer.weights.reduce(0) { $0 + $1.tensor.count }
            let trainableParams = layer.parameters.filter(\.trainable).reduce(0) { $0 + $1.value.count }
            total += params; trainableCount += trainableParams
            let out = "(\(batchLabel), " + shape.dropFirst().map(String.init).joined(separator: ", ") + ")"
            rows.append(("\(layer.name) (\(typeName(layer)))", out, "\(params)",
                         layer.parameters.isEmpty ? "-" : (layer.trainable ? "yes" : "no")))
        }
        let widths = (0..<4).map { c in rows.map { [$0.0, $0.1, $0.2, $0.3][c].count }.max()! + 3 }
        func line(_ r: (String, String, String, String)) -> String {
            [r.0, r.1, r.2, r.3].enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined()
        }
        let rule = String(repeating: "=", count: widths.reduce(0, +))
        var out = [line(rows[0]), rule] + rows.dropFirst().map(line)
        out += [rule,
                "Total params: \(grouped(total))",
                "Trainable params: \(grouped(trainableCount))",
                "Non-trainable params: \(grouped(total - trainableCount))"]
        return out.joined(separator: "\n")
    }

    static func typeName(_ layer: Layer) -> String {
        switch layer {
        case is Conv2D: return "Conv2D"
        case is Dense: return "Dense"
        case let p as Pool2D: return p.kind == .max ? "MaxPooling2D" : "AveragePooling2D"
        case is GlobalAveragePooling2D: return "GlobalAveragePooling2D"
        case is Flatten: return "Flatten"
        case is Dropout: return "Dropout"
        case is BatchNormalization: return "BatchNormalization"
        case is ReLU: return "Activation"
        default: return String(describing: type(of: layer))
        }
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
