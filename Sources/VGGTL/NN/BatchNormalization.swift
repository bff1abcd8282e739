/// Keras' BatchNormalization over the last (channel) axis. Uses batch statistics only when
/// training *and* trainable: a frozen BN layer stays in inference mode, so fine-tuning with
/// frozen blocks does not drift their statistics (the Keras fine-tuning trap).
public final class BatchNormalization: Layer {
    public let name: String
    public let gamma: Parameter, beta: Parameter
    public let movingMean: Tensor, movingVariance: Tensor
    public let momentum: Float, epsilon: Float
    private var x: Tensor?, y: Tensor?, dx: Tensor?, scratch: Tensor?, mean: Tensor?, variance: Tensor?
    private let zeros: Tensor
    private var usedBatchStatistics = false
    /// Always normalise with the moving statistics, even when training and trainable (gamma and
    /// beta still learn): what Keras advises when fine-tuning a pretrained network.
    public var frozenStatistics = false

    public init(_ name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3, on device: Device) throws {
        self.name = name; self.momentum = momentum; self.epsilon = epsilon
        gamma = Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device))
        beta = Parameter(name: "\(name)/beta", value: try Tensor(zeros: [channels], on: device))
        movingMean = try Tensor(zeros: [channels], on: device, what: "\(name)/moving_mean")
        movingVariance = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device, what: "\(name)/moving_variance")
        zeros = try Tensor(zeros: [channels], on: device)
        mean = try Tensor(zeros: [channels], on: device); variance = try Tensor(zeros: [channels], on: device)
    }

    public var parameters: [Parameter] { [gamma, beta] }
    public var weights: [NamedTensor] {
        [NamedTensor(name: gamma.name, tensor: gamma.value), NamedTensor(name: beta.name, tensor: beta.value),
         NamedTensor(name: "\(name)/moving_mean", tensor: movingMean), NamedTensor(name: "\(name)/moving_variance", tensor: movingVariance)]
    }
    var channels: Int { gamma.value.count }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.last == channels else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) channels", expected: [channels], got: [input.last ?? 0])
        }
        return input
    }

    public func forward(_ x: Tensor, training: Bool) throws -> Tensor {
        _ = try outputShape(x.shape)
        let d = x.device, rows = x.count / channels
        let y = try reuse(&self.y, x.shape, on: d, what: "\(name) output")
        usedBatchStatistics = training && trainable && !frozenStatistics
        if usedBatchStatistics {
            d.channelMeanVariance(x.buffer, rows: rows, channels: channels, mean: mean!.buffer, variance: variance!.buffer)
            d.batchNormUpdateRunning(runningMean: movingMean.buffer, runningVariance: movingVariance.buffer, mean: mean!.buffer,
                                     variance: variance!.buffer, channels: channels, rows: rows, momentum: momentum)
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: mean!.buffer, variance: variance!.buffer,
                             gamma: gamma.value.buffer, beta: beta.value.buffer, epsilon: epsilon)
        } else {
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: movingMean.buffer, variance: movingVariance.buffer,
                             gamma: gamma.value.buffer, beta: beta.value.buffer, epsilon: epsilon)
        }
        self.x = x
        return y
    }

    public func backward(_ dy: Tensor, inputGradient: Bool, into target: GradientTarget?) throws -> Tensor? {
        guard let x else { throw VGGTLError.invalidArgument("layer \(name): backward before forward") }
        let d = dy.device, rows = x.count / channels
        let dx = try gradientTensor(&self.dx, x.shape, on: d, what: "\(name) input gradient", target: target)
        if usedBatchStatistics {
            d.batchNormBackward(x.buffer, dy.buffer, dx.buffer, rows: rows, channels: channels, mean: mean!.buffer,
                                variance: variance!.buffer, gamma: gamma.value.buffer, epsilon: epsilon,
                                dgamma: try gamma.gradient().buffer, dbeta: try beta.gradient().buffer)
            return inputGradient ? dx : nil
        }
        // Inference mode: an affine map per channel with the moving statistics.
        if trainable {
            // gamma/beta gradients use the same sums as training mode, with the moving statistics.
            let scratch = try gradientTensor(&self.scratch, x.shape, on: d, what: "\(name) scratch", target: target, scratch: true)
            d.batchNormBackward(x.buffer, dy.buffer, scratch.buffer, rows: rows, channels: channels, mean: movingMean.buffer,
                                variance: movingVariance.buffer, gamma: gamma.value.buffer, epsilon: epsilon,
                                dgamma: try gamma.gradient().buffer, dbeta: try beta.gradient().buffer)
        }
        guard inputGradient else { return nil }
        // dx = dy * gamma / sqrt(var + eps): the apply kernel with zero mean and zero shift.
        d.batchNormApply(dy.buffer, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: movingVariance.buffer,
                         gamma: gamma.value.buffer, beta: zeros.buffer, epsilon: epsilon)
        return dx
    }
}
