/// Keras' BatchNormalization over the last (channel) axis. Uses batch statistics only when
/// training *and* trainable: a frozen BN layer stays in inference mode, so fine-tuning with
/// frozen blocks does not drift their statistics (the Keras fine-tuning trap). `scale: false`
/// has no gamma (Keras' scale=False, as InceptionV3 has it): the weights are beta, moving_mean,
/// moving_variance. epsilon: Keras 1e-3 (ResNet50 1.001e-5), torchvision 1e-5.
public final class BatchNormalization: UnaryLayer, ReLUFusable {
    public let name: String
    var fusedReLU = false
    /// nil with scale=False.
    public let gamma: Parameter?
    public let beta: Parameter
    public let movingMean: Tensor, movingVariance: Tensor
    public let momentum: Float, epsilon: Float
    private var x: Tensor?
    private let mean: Tensor, variance: Tensor
    /// Zeros (the shift of the input-gradient map), and ones standing in for gamma with scale=False.
    private let zeros: Tensor, ones: Tensor
    /// Where the kernels put a gamma gradient nobody wants (scale=False).
    private var unusedGammaGradient: Tensor?
    private var usedBatchStatistics = false
    /// Always normalise with the moving statistics, even when training and trainable (gamma and
    /// beta still learn): what Keras advises when fine-tuning a pretrained network.
    public var frozenStatistics = false

    public init(_ name: String, channels: Int, momentum: Float = 0.99, epsilon: Float = 1e-3, scale: Bool = true, on device: Device) throws {
        self.name = name; self.momentum = momentum; self.epsilon = epsilon
        ones = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device)
        gamma = scale ? Parameter(name: "\(name)/gamma", value: try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device,
                                                                             what: "\(name)/gamma")) : nil
        beta = Parameter(name: "\(name)/beta", value: try Tensor(zeros: [channels], on: device, what: "\(name)/beta"))
        movingMean = try Tensor(zeros: [channels], on: device, what: "\(name)/moving_mean")
        movingVariance = try Tensor([Float](repeating: 1, count: channels), shape: [channels], on: device, what: "\(name)/moving_variance")
        zeros = try Tensor(zeros: [channels], on: device)
        mean = try Tensor(zeros: [channels], on: device); variance = try Tensor(zeros: [channels], on: device)
    }

    public var scale: Bool { gamma != nil }
    public var parameters: [Parameter] { (gamma.map { [$0] } ?? []) + [beta] }
    public var weights: [NamedTensor] {
        parameters.map { NamedTensor(name: $0.name, tensor: $0.value) }
            + [NamedTensor(name: "\(name)/moving_mean", tensor: movingMean), NamedTensor(name: "\(name)/moving_variance", tensor: movingVariance)]
    }
    var channels: Int { beta.value.count }
    private var gammaValue: Tensor { gamma?.value ?? ones }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.last == channels else {
            throw VGGTLError.shapeMismatch(what: "layer \(name) channels", expected: [channels], got: [input.last ?? 0])
        }
        return input
    }

    func usesBatchStatistics(training: Bool) -> Bool { training && trainable && !frozenStatistics }

    public func memory(inputs: [[Int]], training: Bool) -> LayerMemory {
        var m = LayerMemory()
        // Inference mode needs x only for gamma's gradient; then the output may overwrite x.
        m.backwardReadsInputs = usesBatchStatistics(training: training) || gamma?.trainable == true
        if !m.backwardReadsInputs { m.inPlaceInputs = [0] }
        // In inference mode with gamma training, the statistics kernel writes a throw-away input
        // gradient before the real one is computed from dy: dx must not be dy's storage then.
        m.inputGradients = .computed(inPlace: usesBatchStatistics(training: training) || gamma?.trainable != true)
        return m
    }

    public func backwardScratch(dy: [Int], inputGradients: [Bool], dyIsDead: Bool) -> Int {
        // The statistics' kernels also write an input gradient; without a target it goes to dy
        // (when dead) or to scratch.
        let writesUnwanted = usedBatchStatistics || gamma?.trainable == true
        return writesUnwanted && !inputGradients[0] && !dyIsDead ? dy.reduce(1, *) : 0
    }

    public func forward(_ x: Tensor, into out: Tensor?, training: Bool) throws -> Tensor {
        _ = try outputShape(x.shape)
        let d = x.device, rows = x.count / channels
        let y = try required(out)
        usedBatchStatistics = usesBatchStatistics(training: training)
        if usedBatchStatistics {
            d.channelMeanVariance(x.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer)
            d.batchNormUpdateRunning(runningMean: movingMean.buffer, runningVariance: movingVariance.buffer, mean: mean.buffer,
                                     variance: variance.buffer, channels: channels, rows: rows, momentum: momentum)
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: mean.buffer, variance: variance.buffer,
                             gamma: gammaValue.buffer, beta: beta.value.buffer, epsilon: epsilon, relu: fusedReLU)
        } else {
            d.batchNormApply(x.buffer, y.buffer, rows: rows, channels: channels, mean: movingMean.buffer, variance: movingVariance.buffer,
                             gamma: gammaValue.buffer, beta: beta.value.buffer, epsilon: epsilon, relu: fusedReLU)
        }
        self.x = x
        return y
    }

    /// dgamma's buffer: gamma's gradient, or a scratch one for scale=False.
    private func gammaGradient() throws -> Tensor {
        if let gamma { return try gamma.gradient() }
        if unusedGammaGradient == nil { unusedGammaGradient = try Tensor(zeros: [channels], on: beta.value.device) }
        return unusedGammaGradient!
    }

    public func backward(_ dy: Tensor, _ t: GradientTargets) throws {
        guard let x else { throw backwardBeforeForward() }
        let d = dy.device, rows = x.count / channels
        let dx = t.inputs[0]
        // Where an input gradient that is not wanted may go.
        func sink() -> DeviceBuffer { dx?.buffer ?? (t.dyIsDead ? dy.buffer : t.scratch!) }
        if usedBatchStatistics {
            d.batchNormBackward(x.buffer, dy.buffer, sink(), rows: rows, channels: channels, mean: mean.buffer,
                                variance: variance.buffer, gamma: gammaValue.buffer, epsilon: epsilon,
                                dgamma: try gammaGradient().buffer, dbeta: try beta.gradient().buffer)
            return
        }
        // Inference mode: an affine map per channel with the moving statistics.
        if gamma?.trainable == true {
            // gamma/beta gradients use the same sums as training mode, with the moving statistics;
            // the input gradient it also writes is overwritten below (dx is never dy here).
            d.batchNormBackward(x.buffer, dy.buffer, sink(), rows: rows, channels: channels, mean: movingMean.buffer,
                                variance: movingVariance.buffer, gamma: gammaValue.buffer, epsilon: epsilon,
                                dgamma: try gammaGradient().buffer, dbeta: try beta.gradient().buffer)
        } else if beta.trainable {
            d.biasGradient(dy.buffer, rows: rows, channels: channels, db: try beta.gradient().buffer, accumulate: false)
        }
        guard let dx else { return }
        // dx = dy * gamma / sqrt(var + eps): the apply kernel with zero mean and zero shift.
        d.batchNormApply(dy.buffer, dx.buffer, rows: rows, channels: channels, mean: zeros.buffer, variance: movingVariance.buffer,
                         gamma: gammaValue.buffer, beta: zeros.buffer, epsilon: epsilon)
    }
}
