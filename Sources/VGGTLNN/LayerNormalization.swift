import VGGTLTensors

/// Keras' LayerNormalization over the last axis (NHWC: each pixel's channels), with gamma and
/// beta (ConvNeXt; Keras' ConvNeXt uses epsilon 1e-6, torchvision's LayerNorm2d 1e-6 too;
/// Keras' default is 1e-3). Statistics are the row's own, in training and at inference alike.
public final class LayerNormalization: UnaryLayer {
    public let name: String
    public let gamma: Parameter, beta: Parameter
    public let epsilon: Float
    private var x: Tensor?
    /// Each row's mean and 1 / sqrt(variance + eps) from the last forward.
    private var mean: Tensor?, invStd: Tensor?
    /// Where the gradients nobody wants go (frozen gamma or beta, no input gradient).
    private var unused: [Tensor?] = [nil, nil, nil]

    public init(_ name: String, channels: Int, epsilon: Float = 1e-3, on device: Device) throws {
        guard channels > 0 else { throw VGGTLError.invalidArgument("layer \(name): layer normalisation needs at least one channel") }
        self.name = name; self.epsilon = epsilon
        gamma = Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device,
                                                                    what: "\(name)/gamma"))
        beta = Parameter(name: "\(name)/beta", value: try Tensor(zeros: [channels], on: device, what: "\(name)/beta"))
    }

    public var parameters: [Parameter] { [gamma, beta] }
    var channels: Int { gamma.value.count }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        try requireChannels(input, channels, layer: name)
        return input
    }

    public func forward(_ x: Tensor, into out: Tensor?, context: StepContext) throws -> Tensor {
        _ = try outputShape(x.shape)
        let y = try required(out), rows = x.count / channels
        let mean = try reuse(&self.mean, [rows], on: x.device, what: "\(name) row means")
        let invStd = try reuse(&self.invStd, [rows], on: x.device, what: "\(name) row inverse deviations")
        x.device.layerNorm(x.buffer, y.buffer, rows: rows, channels: channels, gamma: gamma.value.buffer, beta: beta.value.buffer,
                           epsilon: epsilon, mean: mean.buffer, invStd: invStd.buffer)
        self.x = x
        return y
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets, context: StepContext) throws {
        guard let x, let mean, let invStd else { throw backwardBeforeForward() }
        guard t.inputs[0] != nil || gamma.trainable || beta.trainable else { return }
        let d = dy.device, rows = dy.count / channels
        // The device writes all three gradients; the ones nobody wants go to spare tensors.
        let dgamma = gamma.trainable ? try gamma.gradient() : try reuse(&unused[0], [channels], on: d, what: "\(name) unused gradient")
        let dbeta = beta.trainable ? try beta.gradient() : try reuse(&unused[1], [channels], on: d, what: "\(name) unused gradient")
        let dx = try t.inputs[0] ?? reuse(&unused[2], dy.shape, on: d, what: "\(name) unused gradient")
        d.layerNormBackward(x.buffer, dy.buffer, dx.buffer, rows: rows, channels: channels, mean: mean.buffer, invStd: invStd.buffer,
                            gamma: gamma.value.buffer, dgamma: dgamma.buffer, dbeta: dbeta.buffer)
    }
}
