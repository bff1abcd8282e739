import Foundation

/// `--verify`: the first batch through the model on its device and on the CPU (same weights,
/// same dropout masks): logits, loss and every trainable gradient must agree.
public enum Verification {
    public struct Report: Sendable {
        public var worst: Float
        public var worstTensor: String
        public var agrees: Bool
        public var text: String
    }

    public static func firstBatch(_ model: Model, batch: Batch, tolerance: Float = 1e-3) throws -> Report {
        let cpu = try CPUDevice()
        let twin = try Model(model.config, on: cpu, seed: 0)
        try loadWeights(weightSet(of: model.layers), into: twin.layers)
        for (a, b) in zip(model.layers, twin.layers) {
            b.trainable = a.trainable
            if let da = a as? Dropout, let db = b as? Dropout { db.step = da.step }
        }
        var results: [[(String, [Float])]] = []
        for m in [model, twin] {
            let d = m.device
            let x = try Tensor(batch.x, shape: [batch.count] + m.config.inputShape, on: d)
            let y = try Tensor(batch.labels, shape: m.config.loss == .softmaxCrossEntropy ? [batch.count] : [batch.count, 1], on: d)
            let steps = m.dropoutSteps
            let logits = try m.network.forward(x, training: true)
            let (l, g) = try Loss(m.config.loss).compute(logits: logits, labels: y)
            try m.network.backward(g)
            // Leave the model as it was: dropout counters back, gradients are overwritten next step.
            for layer in m.layers { if let dr = layer as? Dropout { dr.step = steps[dr.name] ?? 0 } }
            results.append([("logits", logits.toArray()), ("loss", [l])]
                           + m.network.trainableParameters.compactMap { p in p.grad.map { ("d " + p.name, $0.toArray()) } })
        }
        var worst: Float = 0, worstName = ""
        for (a, b) in zip(results[0], results[1]) {
            var num: Float = 0, den: Float = 1e-20
            for i in a.1.indices { num = max(num, abs(a.1[i] - b.1[i])); den = max(den, abs(b.1[i])) }
            if num / den > worst || !(num / den).isFinite { worst = num / den; worstName = a.0 }
        }
        let ok = worst <= tolerance
        let text = String(format: "verify: %@ vs cpu on the first batch: largest relative difference %.2e in %@ (tolerance %.0e): %@",
                          model.device.name, worst, worstName, tolerance, ok ? "agree" : "DISAGREE")
        return Report(worst: worst, worstTensor: worstName, agrees: ok, text: text)
    }
}
