import VGGTLTensors

/// Keras' Dense: y = f(x W + b) with W of shape (in, out) and f an `Activation` (linear by default).
public final class Dense: UnaryLayer {
    public let name: String
    public let kernel: Parameter, bias: Parameter
    public let activation: Activation
    private var x: Tensor?, y: Tensor?
    /// The pre-activation of a pointwise activation (not ReLU), which its backward reads.
    private var z: Tensor?

    public init(_ name: String, inputs: Int, units: Int, activation: Activation = .linear,
                on device: Device, rng: inout SeededGenerator) throws {
        self.name = name; self.activation = activation
        kernel = Parameter(name: "\(name)/kernel", value: try Tensor(
            glorotUniform([inputs, units], fanIn: inputs, fanOut: units, rng: &rng), shape: [inputs, units], on: device, what: "\(name)/kernel"))
        bias = Parameter(name: "\(name)/bias", value: try Tensor(zeros: [units], on: device, what: "\(name)/bias"))
    }

    public var parameters: [Parameter] { [kernel, bias] }
    var inputs: Int { kernel.value.shape[0] }
    var units: Int { kernel.value.shape[1] }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireRank(input, 2, layer: name)
        guard input[1] == inputs else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) input features", expected: [inputs], got: [input[1]])
        }
        return [input[0], units]
    }

    public func memory(inputs: [[Int]], context: StepContext) -> LayerMemory { .kernelLayer(kernel: kernel, activation: activation) }

    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool, context: StepContext) -> Int {
        activationScratch(activation, dy: dy, dyIsDead: dyIsDead)
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        let shape = try outputShape(x.shape), d = x.device, n = shape[0]
        let y = try required(out)
        let z = try preActivation(activation, output: y, &self.z, layer: name)
        d.gemm(transA: false, transB: false, m: n, n: units, k: inputs, alpha: 1, a: x.buffer, aOffset: 0, lda: inputs,
               b: kernel.value.buffer, bOffset: 0, ldb: units, beta: 0, c: z.buffer, cOffset: 0, ldc: units)
        d.addBias(z.buffer, bias: bias.value.buffer, rows: n, channels: units)
        if activation == .relu { d.relu(y.buffer, y.buffer, count: y.count) }
        applyActivation(activation, z, y)
        self.x = x; self.y = y
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x, let y else { throw backwardBeforeForward() }
        let d = dy.device, n = x.shape[0]
        let grad = activationGradient(activation, dy, output: y, preActivation: z, t)
        if kernel.trainable {
            d.gemm(transA: true, transB: false, m: inputs, n: units, k: n, alpha: 1, a: x.buffer, aOffset: 0, lda: inputs,
                   b: grad.buffer, bOffset: 0, ldb: units, beta: 0, c: try kernel.gradient().buffer, cOffset: 0, ldc: units)
        }
        if bias.trainable {
            d.biasGradient(grad.buffer, rows: n, channels: units, db: try bias.gradient().buffer, accumulate: false)
        }
        guard let dx = t.inputs[0] else { return }
        d.gemm(transA: false, transB: true, m: n, n: inputs, k: units, alpha: 1, a: grad.buffer, aOffset: 0, lda: units,
               b: kernel.value.buffer, bOffset: 0, ldb: units, beta: 0, c: dx.buffer, cOffset: 0, ldc: inputs)
    }
}
