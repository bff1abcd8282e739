import VGGTLTensors
import VGGTLNN

/// An optimizer updates parameters in place on their device from their gradients; its state
/// (velocities, moments) lives on the same device.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Updates done so far (Adam's bias correction uses it); saved with checkpoints.
    var iterations: Int { get set }
    func update(_ parameters: [Parameter]) throws
    /// The state tensors of these parameters ("optimizer/block5_conv1/kernel/velocity"), created
    /// as zeros where missing: checkpoints save them and resume writes into them.
    func stateTensors(for parameters: [Parameter]) throws -> [NamedTensor]
}

/// Per-parameter state tensors, created on first use on the parameter's device.
final class OptimizerState {
    let slotNames: [String]
    private var slots: [ObjectIdentifier: [Tensor]] = [:]
    init(_ slotNames: [String]) { self.slotNames = slotNames }

    func tensors(for p: Parameter) throws -> [Tensor] {
        if let s = slots[ObjectIdentifier(p)] { return s }
        let s = try slotNames.map { try Tensor(zeros: p.value.shape, on: p.value.device, what: "\(p.name) \($0)") }
        slots[ObjectIdentifier(p)] = s
        return s
    }

    func named(for parameters: [Parameter]) throws -> [NamedTensor] {
        try parameters.flatMap { p in
            try zip(slotNames, tensors(for: p)).map { NamedTensor(name: "optimizer/\(p.name)/\($0)", tensor: $1) }
        }
    }
}

/// SGD with optional (Nesterov) momentum and L2 weight decay, in PyTorch's form:
/// v = m v + (g + wd p); p -= lr v (Nesterov: p -= lr (g + wd p + m v)).
public final class SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float, nesterov: Bool, weightDecay: Float
    public var iterations = 0
    let state = OptimizerState(["velocity"])
    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.momentum = momentum; self.nesterov = nesterov; self.weightDecay = weightDecay
    }
    public func update(_ parameters: [Parameter]) throws {
        iterations += 1
        let c = SGDConfig(lr: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        for p in parameters where p.trainable {
            guard let g = p.grad else { continue }
            let v = momentum != 0 ? try state.tensors(for: p)[0].buffer : nil
            p.value.device.sgdUpdate(param: p.value.buffer, grad: g.buffer, velocity: v, count: p.value.count, c)
            p.value.markChanged()
        }
    }
    public func stateTensors(for parameters: [Parameter]) throws -> [NamedTensor] {
        momentum != 0 ? try state.named(for: parameters) : []
    }
}

/// Adam with bias correction; epsilon defaults to Keras' 1e-7.
public final class Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    public var iterations = 0
    let state = OptimizerState(["m", "v"])
    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.weightDecay = weightDecay
    }
    public func update(_ parameters: [Parameter]) throws {
        iterations += 1
        let c = AdamConfig(lr: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        for p in parameters where p.trainable {
            guard let g = p.grad else { continue }
            let s = try state.tensors(for: p)
            p.value.device.adamUpdate(param: p.value.buffer, grad: g.buffer, m: s[0].buffer, v: s[1].buffer,
                                      count: p.value.count, step: iterations, c)
            p.value.markChanged()
        }
    }
    public func stateTensors(for parameters: [Parameter]) throws -> [NamedTensor] { try state.named(for: parameters) }
}

/// RMSprop: s = rho s + (1 - rho) g^2; p -= lr g / (sqrt(s) + eps).
public final class RMSprop: Optimizer {
    public var learningRate: Float
    public var rho: Float, epsilon: Float, weightDecay: Float
    public var iterations = 0
    let state = OptimizerState(["mean_square"])
    public init(learningRate: Float = 1e-3, rho: Float = 0.9, epsilon: Float = 1e-7, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.rho = rho; self.epsilon = epsilon; self.weightDecay = weightDecay
    }
    public func update(_ parameters: [Parameter]) throws {
        iterations += 1
        let c = RMSpropConfig(lr: learningRate, rho: rho, epsilon: epsilon, weightDecay: weightDecay)
        for p in parameters where p.trainable {
            guard let g = p.grad else { continue }
            let s = try state.tensors(for: p)[0]
            p.value.device.rmspropUpdate(param: p.value.buffer, grad: g.buffer, meanSquare: s.buffer, count: p.value.count, c)
            p.value.markChanged()
        }
    }
    public func stateTensors(for parameters: [Parameter]) throws -> [NamedTensor] { try state.named(for: parameters) }
}
