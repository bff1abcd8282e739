import VGGTLTensors

/// An optimizer as flags and checkpoints describe it; builds the Optimizer object.
public struct OptimizerSpec: Codable, Equatable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case sgd, adam, rmsprop }
    public var kind: Kind
    public var learningRate: Float
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0

    public init(kind: Kind, learningRate: Float, momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) throws {
        guard learningRate > 0, learningRate.isFinite else {
            throw VGGTLError.invalidSetting(.learningRate, value: "\(learningRate)", expected: "a positive learning rate such as 1e-4")
        }
        guard (0..<1).contains(momentum) else { throw VGGTLError.invalidSetting(.momentum, value: "\(momentum)", expected: "a value in [0, 1)") }
        guard weightDecay >= 0 else { throw VGGTLError.invalidSetting(.weightDecay, value: "\(weightDecay)", expected: "a value >= 0") }
        self.kind = kind; self.learningRate = learningRate; self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }

    public func make() -> Optimizer {
        switch kind {
        case .sgd: return SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        case .adam: return Adam(learningRate: learningRate, weightDecay: weightDecay)
        case .rmsprop: return RMSprop(learningRate: learningRate, weightDecay: weightDecay)
        }
    }

    public var summary: String {
        switch kind {
        case .sgd: return "SGD(lr=\(learningRate), momentum=\(momentum)\(nesterov ? ", nesterov" : "")\(weightDecay > 0 ? ", weight_decay=\(weightDecay)" : ""))"
        case .adam: return "Adam(lr=\(learningRate)\(weightDecay > 0 ? ", weight_decay=\(weightDecay)" : ""))"
        case .rmsprop: return "RMSprop(lr=\(learningRate)\(weightDecay > 0 ? ", weight_decay=\(weightDecay)" : ""))"
        }
    }
}
