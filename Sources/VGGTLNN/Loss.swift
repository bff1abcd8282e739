import VGGTLTensors

/// Losses computed on the device; only the per-sample losses (batch floats) come back to the host.
public enum LossKind: String, Sendable {
    /// Softmax over N classes, labels are class indices.
    case softmaxCrossEntropy
    /// One sigmoid unit, labels are 0 or 1 (Keras' Dense(1, sigmoid) + binary_crossentropy).
    case sigmoidBinaryCrossEntropy
}

public final class Loss {
    public let kind: LossKind
    /// Keras' class_weight: each sample's loss (and gradient) times the weight of its class, the
    /// mean still over the batch's samples. nil: every class weighs 1. A sigmoid head takes [w0, w1].
    public let classWeights: [Float]?
    private var perSample: Tensor?, dlogits: Tensor?, weights: Tensor?
    public init(_ kind: LossKind, classWeights: [Float]? = nil) {
        self.kind = kind
        self.classWeights = classWeights
    }

    /// The class weights on the logits' device, uploaded once.
    private func weightBuffer(on d: Device, classes: Int) throws -> DeviceBuffer? {
        guard let classWeights else { return nil }
        guard classWeights.count == classes else {
            throw VGGTLError.shapeMismatch(what: "class weights", expected: [classes], got: [classWeights.count])
        }
        if let weights, weights.device === d { return weights.buffer }
        let t = try Tensor(classWeights, shape: [classes], on: d)
        weights = t
        return t.buffer
    }

    /// Mean loss over the batch and dL/dlogits (for the mean). `gradientScale` replaces the
    /// gradient's 1/rows per row: data-parallel training passes 1/(rows of all ranks), so every
    /// rank's gradients are parts of one sum (0 for a rank whose shard of a step is empty).
    public func compute(logits: Tensor, labels: Tensor, gradientScale: Float? = nil) throws -> (loss: Float, gradient: Tensor) {
        let d = logits.device, rows = logits.shape[0], classes = logits.count / max(rows, 1)
        let dl = try reuse(&dlogits, logits.shape, on: d, what: "loss gradient")
        switch kind {
        case .softmaxCrossEntropy:
            guard labels.count == rows else {
                throw VGGTLError.shapeMismatch(what: "labels for softmax cross-entropy", expected: [rows], got: labels.shape)
            }
            let l = try reuse(&perSample, [rows], on: d, what: "loss")
            d.softmaxCrossEntropy(logits.buffer, labels: labels.buffer, rows: rows, classes: classes, loss: l.buffer,
                                  dlogits: dl.buffer, gradScale: gradientScale ?? 1 / Float(rows),
                                  classWeights: try weightBuffer(on: d, classes: classes))
        case .sigmoidBinaryCrossEntropy:
            guard labels.count == logits.count else {
                throw VGGTLError.shapeMismatch(what: "labels for sigmoid binary cross-entropy", expected: logits.shape, got: labels.shape)
            }
            let l = try reuse(&perSample, logits.shape, on: d, what: "loss")
            d.sigmoidBinaryCrossEntropy(logits.buffer, targets: labels.buffer, count: logits.count, loss: l.buffer,
                                        dlogits: dl.buffer, gradScale: gradientScale.map { $0 * Float(rows) / Float(logits.count) } ?? 1 / Float(logits.count),
                                        classWeights: try weightBuffer(on: d, classes: 2))
        }
        let values = perSample!.toArray()
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        return (Float(mean), dl)
    }
}
